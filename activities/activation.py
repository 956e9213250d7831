"""Plan activation activities: the audit trail and read model, who holds the plan's posts, sending.

Every write carries the activation's latest view; store/activations.py upserts it in
the same transaction as the audit events (subject ``activation/<id>``), so
`GET /api/activations/{id}` and the audit trail agree.
"""
from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from sqlmodel import Session
from temporalio import activity

from activities.common import audit_events, duty_contacts, local, read, write
from activities.common import now as _now
from activities.delivery import Delivery, Outcome, deliver
from activities.escalation import Batch, answer_text, send_and_record
from config import get_settings
from definitions.schema.plans import INCIDENT_TOWN, ResponsePlan
from store import activations as store
from store.audit import NewEvent
from store.directory import district, mask_mobile
from workflows.kit import names
from workflows.activation import (
    FlushRequest,
    FlushResult,
    Holder,
    NotifyRequest,
    RecordRequest,
    ResolveRequest,
    ResolveResult,
    subject_of,
)

AUDIT_PREFIX = {"convene": "activation.convene", "notice": "activation.notice", "overdue": "activation.overdue",
                "orders": "activation.dispatch.order", "request": "activation.reinforcement.request",
                "chase": "activation.reinforcement.chase", "experts": "activation.experts"}


def _subject(req: RecordRequest) -> str:
    return subject_of(req.info.activation_id)


async def _write(req: RecordRequest, extra: list[NewEvent]) -> None:
    """The activation's view and the request's events (and `extra`), in one transaction."""
    await write(lambda s: store.upsert(s, req.view.model_dump(mode="json"), req.plan_version),
                [*audit_events(_subject(req), req.workflow_id, req.run_id, req.events), *extra])


@activity.defn(name=names.Activation.RECORD)
async def record(req: RecordRequest) -> None:
    await _write(req, [])


# ------------------------------------------------------------------ who holds the plan's posts


def find_holders(s: Session, req: ResolveRequest, at: datetime) -> ResolveResult:
    plan: ResponsePlan = req.plan
    d = store.PostHolders(s, plan.positions())
    home = district(s)
    out = ResolveResult(duty=duty_contacts(s, at), district=home.name if home else "")
    town = d.units.get(req.town_id or "")
    for ref in plan.posts():
        unit = ref.org_unit
        if unit == INCIDENT_TOWN:
            if town is None:
                out.gaps.append(f"{ref.key}: the incident names no town in the directory")
                out.holders[ref.key] = Holder(key=ref.key, position=ref.position, label=f"事发地{ref.position}")
                continue
            unit = town.id
        h = Holder(**d.holder(ref.key, ref.position, unit))
        if unit is not None and unit not in d.units:
            out.gaps.append(f"{ref.key}: no org unit {unit!r} in the directory")
        elif h.person is None:
            out.gaps.append(f"{ref.key}: nobody holds {h.label}")
        out.holders[ref.key] = h
    for uid in req.units:
        for code in plan.directives.unit_heads:
            h = Holder(**d.holder(f"unit:{uid}", code, uid))
            if h.person is not None:
                out.unit_heads[uid] = h
                break
    if req.seasons:
        today = at.astimezone(ZoneInfo(get_settings().timezone))
        out.season = next((x for x in req.seasons if x.contains(today.month, today.day)), None)
    return out


@activity.defn(name=names.Activation.RESOLVE)
async def resolve(req: ResolveRequest) -> ResolveResult:
    return await read(lambda s: find_holders(s, req, req.at))


# ------------------------------------------------------------------ messages without an answer


@activity.defn(name=names.Activation.NOTIFY)
async def notify(req: NotifyRequest) -> None:
    rec = req.record
    deliveries = [Delivery(key=n.key, channel=n.channel, to=n.to, body=_fill(n.text, due=n.due_at), person_id=n.person_id,
                           subject=_subject(rec), meta={"purpose": req.kind}) for n in req.notices]
    outcomes = await deliver(deliveries)
    to = [{"person_id": n.person_id, "name": n.name, "channel": n.channel,
           "to": mask_mobile(n.to) if n.channel != "im" else n.to, "status": o.status}
          for n, o in zip(req.notices, outcomes, strict=True)]
    event = NewEvent(subject=_subject(rec), kind=req.kind, step_id=req.step_id, workflow_id=rec.workflow_id,
                     run_id=rec.run_id, at=_now(), payload={**req.payload, "to": to,
                                                            "text": _fill(req.notices[0].text, due=req.notices[0].due_at)
                                                            if req.notices else None,
                                                            "gap": None if req.notices else "nobody to tell"})
    await _write(rec, [event])


# ------------------------------------------------------------------ sending (escalation episodes)


def _fill(text: str, *, due: datetime | None = None, label: str = "", roles: str = "") -> str:
    """Fill the workflow's placeholders; user text is never passed through str.format."""
    return text.replace("{due}", local(due) if due else "—").replace("{label}", label).replace("{roles}", roles)


def render(send, req: FlushRequest, code: str | None, link: str | None) -> tuple[str, str | None]:
    text = _fill(req.text, due=req.due_at, label=send.about, roles=req.roles.get(send.target_key, ""))
    answer = answer_text(code, link)
    if send.purpose in ("notify", "escalate"):
        prefix = ""
        if send.purpose == "escalate":
            prefix = (f"【督办升级】{send.about}未按时反馈,请您督促落实。" if req.kind == "overdue" else
                      f"【升级】{send.about}未应答,请您代为落实。")
        return prefix + text + answer, prefix + text + "请按1确认。"
    if send.purpose == "inform":
        return f"【告知】{req.label}:{send.about}未应答,请电话落实。", None
    if send.purpose in ("cancel", "update"):
        why = send.key.rsplit(f"/{send.purpose}-", 1)[-1] if f"/{send.purpose}-" in send.key else "已结束"
        return f"【撤销】{req.label}:{why}。无需再回复。", None
    return f"{req.label}", None


@activity.defn(name=names.Activation.FLUSH)
async def flush(req: FlushRequest) -> FlushResult:
    rec = req.record

    def save(s: Session, outcomes: dict[str, Outcome], now: datetime) -> None:
        store.upsert(s, rec.view.model_dump(mode="json"), rec.plan_version)

    batch = Batch(subject=_subject(rec), workflow_id=rec.workflow_id, run_id=rec.run_id, episode=req.episode,
                  kind=AUDIT_PREFIX[req.kind], sends=req.sends, records=req.records, context={"label": req.label})
    return FlushResult.model_validate(await send_and_record(batch, lambda send, code, link: render(send, req, code, link),
                                                     save=save))

