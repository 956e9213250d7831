"""上报: the duty office's reports to the city (市应急管理局值班室) and, for major events, the province, through the
city line (activities/gateways/cityline.py), SMS to the office's number as the fallback.

One activity per report version and upward recipient (`reporting.upward`), retried by the chain
(workflows/reporting/workflow.py UPWARD_RETRY). Idempotent by (report id, version, recipient): a version recorded
sent (or sent by SMS) answers from the trail; a try after one that may have reached the platform asks it before
posting again. On its last try, a platform still down (or refusing) gets the SMS instead: `report.city.fallback`.
The platform's receipt (签收) comes to `POST /api/webhooks/cityline` (api/routes/webhooks_cityline.py):
`report.city.receipt`. The platform may sign before we have heard it took the post: the post is written down
(store/upward.py `begin`, committed) before it is sent, the webhook keeps a receipt that comes in between on it,
and the event that records how the post ended is appended with that receipt right after it (`settle`).
"""
from __future__ import annotations

import asyncio

from sqlmodel import select
from temporalio import activity

from activities.common import local, read, sms_each, write
from activities.delivery import deliver
from activities.gateways import cityline_gateway
from activities.gateways.cityline import CityReport, CitylineError
from activities.reporting import report_text
from store import upward as posts
from store.audit import AuditEvent, NewEvent, append
from store.db import session_scope
from store.directory import mask_mobile
from workflows.escalation import Contact
from workflows.kit import names
from workflows.kit.events import Reporting as Kinds
from workflows.reporting.models import UPWARD_ATTEMPTS, UpwardRequest, UpwardResult
from workflows.subjects import incident_subject


def step_of(to: str, report_id: str, version: int) -> str:
    """The trail's step of one version of one report to one upward recipient (its events: …/sent, …/receipt)."""
    return f"city/{to}/{report_id.rsplit('/', 1)[-1]}/v{version}"


def verbal_text(req: UpwardRequest) -> str:
    i, v, c = req.incident, req.verbal, req.incident.casualties
    lines = [f"【口头报告】{i.title}", f"接报时间:{local(req.received_at)}", f"地点:{i.place}", f"简要情况:{i.summary}",
             f"伤亡情况:死亡{c.deaths}人、受伤{c.injured}人、失联{c.missing}人、被困{c.trapped}人"]
    if v is not None:
        lines.append(f"报告人:{v.by_whom}  时间:{local(v.at)}")
    lines.append("报送:区政府总值班室")
    return "\n".join(lines)


def text_of(req: UpwardRequest) -> str:
    if req.report is not None:
        return report_text(req.report, req.incident.title, req.received_at)
    return verbal_text(req)


@activity.defn(name=names.Reporting.UPWARD)
async def upward(req: UpwardRequest) -> UpwardResult:
    info = activity.info()
    r, item, iid = req.recipient, req.item, req.incident.incident_id
    subject, step = incident_subject(iid), step_of(r.id, item.report_id, item.version)

    done = await read(lambda s: s.exec(select(AuditEvent).where(
        AuditEvent.subject == subject, AuditEvent.step_id.in_([f"{step}/sent", f"{step}/fallback"]))).first())
    if done is not None:  # recorded by an earlier run of this activity
        return UpwardResult(status="sent" if done.kind == Kinds.CITY_SENT else "fallback",
                            receipt_id=done.payload.get("receipt_id"))
    text = text_of(req)
    at = (req.verbal.at if req.report is None and req.verbal else
          (req.report.submitted_at if req.report is not None else None)) or req.received_at
    report = CityReport(report_id=item.report_id, version=item.version, to=r.id, kind=item.kind, label=item.label,
                        incident_id=iid, title=req.incident.title, text=text, at=at.isoformat())
    base = {"to": r.id, "name": r.name_zh, "report_id": item.report_id, "version": item.version, "kind": item.kind,
            "label": item.label}
    gateway = cityline_gateway()
    # before the post, durably: a receipt that comes before we record it sent is for a report being sent (kept)
    await write(lambda s: posts.begin(s, subject, step, req.workflow_id), [])
    try:
        taken = await gateway.post(report, maybe_sent=info.attempt > 1)
    except CitylineError as exc:
        if exc.retry and info.attempt < UPWARD_ATTEMPTS:
            raise
        contact = Contact(person_id=f"rcpt:{r.id}", name=r.name_zh, mobile=r.mobile)
        outcomes = await deliver(sms_each([contact], lambda c: f"{req.workflow_id}/{step}/sms", text, subject=subject,
                                          meta={"purpose": "upward", "to": r.id, "report_id": item.report_id,
                                                "version": item.version}))
        await asyncio.to_thread(settle, NewEvent(
            subject=subject, kind=Kinds.CITY_FALLBACK, step_id=f"{step}/fallback", workflow_id=req.workflow_id,
            run_id=req.run_id, channel="sms", payload={**base, "error": str(exc), "attempts": info.attempt,
                                                       "mobile": mask_mobile(r.mobile),
                                                       "statuses": [o.status for o in outcomes]}))
        return UpwardResult(status="fallback")
    extra = []
    if taken.signed:  # the simulator signs for it at once
        extra.append(NewEvent(subject=subject, kind=Kinds.CITY_RECEIPT, step_id=f"{step}/receipt",
                              workflow_id=req.workflow_id, run_id=req.run_id, channel="cityline",
                              payload={**base, "receipt_id": taken.receipt_id, "status": "signed", "by": "simulator"}))
    await asyncio.to_thread(settle, NewEvent(
        subject=subject, kind=Kinds.CITY_SENT, step_id=f"{step}/sent", workflow_id=req.workflow_id, run_id=req.run_id,
        channel="cityline", payload={**base, "receipt_id": taken.receipt_id, "status": taken.status,
                                     "asked": taken.asked, "attempts": info.attempt}), extra)
    return UpwardResult(status="sent", receipt_id=taken.receipt_id, asked=taken.asked)


def settle(outcome: NewEvent, extra: list[NewEvent] | None = None) -> None:
    """Record how the post ended (`outcome`), the receipt the webhook held for it right after it (store/upward.py),
    then `extra`: one transaction, the post's row locked first (the webhook takes the same lock)."""
    with session_scope() as s:
        append(s, posts.with_held(s, [outcome, *(extra or [])]))
