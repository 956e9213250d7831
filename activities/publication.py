"""Publication activities (精准发布 below orange): open, resolve and send once, record delivery reports, finish.

The persons come from the plan's `publish:` tiers through store.targets.resolve_recipients (the call-out's
directory query, without deputies or superiors: nobody is escalated to); a cancel notice goes to the persons the
earlier publications reached. Every message goes through the outbox (activities/delivery), with no reply code
and no link: nobody is asked to answer.
"""
from __future__ import annotations

import asyncio
from collections import defaultdict
from typing import Any

from sqlmodel import col, select
from temporalio import activity

from activities.common import now as _now
from activities.delivery import Delivery, deliver
from store.audit import NewEvent, append
from store.db import session_scope
from store.directory import mask_mobile
from store.messages import OutboxMessage
from store.publications import Publication, messages, tally
from store.targets import resolve_recipients
from workflows.kit.events import FAILED_STATUSES
from workflows.kit.events import Publication as Ev
from workflows.kit.names import Publication as Names
from workflows.publication import (
    Deliveries,
    PublicationEnd,
    PublicationInput,
    PublicationSummary,
    SendOutcome,
    SendRequest,
    SendResult,
    SupersededNote,
)

DRILL = "【演练】"


def _ev(subject: str, kind: str, step: str, workflow_id: str, run_id: str | None = None, **kw: Any) -> NewEvent:
    return NewEvent(subject=subject, kind=kind, step_id=step, workflow_id=workflow_id, run_id=run_id, **kw)


def render(inp: PublicationInput) -> str:
    """The text of a publication's messages (Chinese only), the drill marker first."""
    w, pub = inp.warning, inp.plan.publish
    fill = {"level": w.level.zh, "event": w.event or "", "headline": w.headline or "", "area": "、".join(w.area_descs) or "全区"}
    if pub is None:  # a plan edited after the publication started: the snapshot had a section; defaults stand in
        template = {"cancel": "【预警解除】{event}{level}预警已解除。"}.get(inp.purpose, "【预警发布】{event}{level}预警:{headline} 范围:{area}。")
    else:
        template = {"publish": pub.message_zh, "update": pub.update_message_zh, "cancel": pub.cancel_message_zh}[inp.purpose]
    return (DRILL if inp.drill else "") + template.format(**fill)


@activity.defn(name=Names.OPEN)
async def open_publication(inp: PublicationInput) -> None:
    info = activity.info()

    def write() -> None:
        with session_scope() as s:
            if s.get(Publication, inp.publication_id) is None:
                s.add(Publication(id=inp.publication_id, warning_id=inp.warning.warning_id, plan_id=inp.plan.id,
                                  plan_version=inp.plan_version, level=inp.warning.level.value, purpose=inp.purpose,
                                  title=inp.warning.headline or inp.warning.event, drill=inp.drill))
            append(s, [_ev(inp.publication_id, Ev.STARTED, "started", info.workflow_id, info.workflow_run_id,
                           payload={"warning_id": inp.warning.warning_id, "identifier": inp.warning.identifier,
                                    "level": inp.warning.level.value, "towns": inp.warning.town_ids, "plan": inp.plan.id,
                                    "version": inp.plan_version, "purpose": inp.purpose,
                                    "informed_by": inp.informed_by, "drill": inp.drill})])

    await asyncio.to_thread(write)


def _recipients(inp: PublicationInput) -> tuple[list[dict], list[dict]]:
    """(person, tier, label, [(channel, address)]) per person to send to, and the gaps."""
    with session_scope(write=False) as s:
        if inp.purpose == "cancel":  # the persons the earlier publications reached, by the channels that reached them
            rows = s.exec(select(OutboxMessage).where(col(OutboxMessage.subject).in_(inp.informed_by or ["-"]))
                          .order_by(OutboxMessage.id))
            by_person: dict[str, dict] = {}
            for m in rows:
                if m.status in FAILED_STATUSES or not m.person_id:
                    continue
                meta = m.meta or {}
                p = by_person.setdefault(m.person_id, {"person_id": m.person_id, "tier": meta.get("tier"),
                                                       "tier_zh": meta.get("tier_zh"), "label": meta.get("label"),
                                                       "channels": []})
                if all(c != m.channel for c, _ in p["channels"]):
                    p["channels"].append((m.channel, m.to))
            return list(by_person.values()), []
        level = inp.plan.publish_for(inp.warning.level)
        if level is None:
            return [], [{"problem": f"the plan publishes nothing for {inp.warning.level.value}"}]
        found, gaps = resolve_recipients(s, level.tiers, inp.warning.town_ids)
        names = {t.id: t.name_zh for t in level.tiers}
        out = []
        for r in found:
            person = r["person"]
            address = {"sms": person.get("mobile"), "voice": person.get("mobile"), "im": person.get("im_id")}
            channels = [(c.value, address[c.value]) for c in level.channels if address.get(c.value)]
            if not channels:
                gaps.append({"tier": r["tier"], "problem": "no channel", "person_id": person["person_id"]})
                continue
            out.append({"person_id": person["person_id"], "tier": r["tier"], "tier_zh": names.get(r["tier"], r["tier"]),
                        "label": r["label"], "channels": channels, "priority": r["priority"]})
        return out, gaps


@activity.defn(name=Names.SEND)
async def send(req: SendRequest) -> SendResult:
    """Resolve the persons and send each of them the text once per channel (through the outbox: a retry sends
    nothing twice), recording every send."""
    inp = req.inp
    recipients, gaps = await asyncio.to_thread(_recipients, inp)
    body = render(inp)
    deliveries = [Delivery(key=f"{req.workflow_id}/{inp.purpose}/{r['person_id']}/{channel}", channel=channel, to=to,
                           body=body, person_id=r["person_id"], subject=inp.publication_id, workflow_id=req.workflow_id,
                           priority=r.get("priority", 30), drill=inp.drill,
                           meta={"purpose": f"publication.{inp.purpose}", "tier": r["tier"], "tier_zh": r["tier_zh"],
                                 "label": r["label"]})
                  for r in recipients for channel, to in r["channels"]]
    outcomes = {o.key: o for o in await deliver(deliveries)}
    now = _now()

    def write() -> None:
        per_tier: dict[str, int] = defaultdict(int)
        for r in recipients:
            per_tier[r["tier"] or ""] += 1
        events = [_ev(inp.publication_id, Ev.RESOLVED, f"resolve/{inp.purpose}", req.workflow_id, req.run_id,
                      payload={"purpose": inp.purpose, "towns": inp.warning.town_ids, "total": len(recipients),
                               "per_tier": dict(per_tier), "gaps": gaps, "informed_by": inp.informed_by})]
        for d in deliveries:
            o = outcomes[d.key]
            events.append(_ev(inp.publication_id, Ev.SENT, f"send/{d.key.removeprefix(req.workflow_id + '/')}",
                              req.workflow_id, req.run_id, actor="system", channel=d.channel, at=o.accepted_at or now,
                              payload={"person_id": d.person_id, "tier": (d.meta or {}).get("tier"), "purpose": inp.purpose,
                                       "to": mask_mobile(d.to) if d.channel != "im" else d.to, "status": o.status,
                                       "error": o.error, "outbox_id": o.outbox_id, "drill": inp.drill}))
        with session_scope() as s:
            append(s, events)

    await asyncio.to_thread(write)
    return SendResult(persons=len(recipients), sends=[SendOutcome(key=k, status=o.status) for k, o in outcomes.items()])


@activity.defn(name=Names.DELIVERY)
async def record_deliveries(batch: Deliveries) -> None:
    """The gateway's delivery reports (the outbox rows were updated by the API when they came)."""
    info = activity.info()

    def write() -> None:
        with session_scope() as s:
            rows = {m.idempotency_key: m for m in s.exec(select(OutboxMessage).where(
                col(OutboxMessage.idempotency_key).in_([r.send_key for r in batch.reports])))}
            events = []
            for r in batch.reports:
                m = rows.get(r.send_key)
                events.append(_ev(batch.publication_id, Ev.DELIVERY,
                                  f"delivery/{r.send_key.removeprefix(batch.workflow_id + '/')}/{r.status}",
                                  batch.workflow_id, info.workflow_run_id, channel=m.channel if m else None, at=r.at,
                                  payload={"person_id": m.person_id if m else None, "status": r.status,
                                           "detail": r.detail, "outbox_id": m.id if m else None}))
            append(s, events)

    await asyncio.to_thread(write)


@activity.defn(name=Names.SUPERSEDED)
async def record_superseded(req: SupersededNote) -> None:
    info = activity.info()

    def write() -> None:
        with session_scope() as s:
            row = s.get(Publication, req.publication_id)
            if row is not None and req.note.by.startswith("callout-"):
                row.superseded_by = req.note.by
            append(s, [_ev(req.publication_id, Ev.SUPERSEDED, f"superseded/{req.note.by}", req.workflow_id,
                           info.workflow_run_id, payload={"by": req.note.by, "reason": req.note.reason})])

    await asyncio.to_thread(write)


def summary_text(row: Publication, counts: dict) -> str:
    rate = f"{counts['rate']:.0%}" if counts["rate"] is not None else "—"
    return (f"{DRILL if row.drill else ''}【发布小结】{row.title}: 发布{counts['persons']}人,短信等{counts['sent']}条,"
            f"已送达{counts['delivered']}条,失败{counts['failed']}条,送达率{rate}")


@activity.defn(name=Names.FINISH)
async def finish(end: PublicationEnd) -> PublicationSummary:
    """The summary (sent, delivered, failed, delivery rate) and the end, in one transaction."""
    info = activity.info()

    def close() -> PublicationSummary:
        with session_scope() as s:
            row = s.get(Publication, end.publication_id)
            counts = tally(messages(s, end.publication_id))
            row.status, row.counts = end.status, counts
            row.ended_at = row.ended_at or _now()
            append(s, [_ev(end.publication_id, Ev.SUMMARY, "summary", end.workflow_id, info.workflow_run_id,
                           payload={**counts, "text": summary_text(row, counts), "drill": end.drill}),
                       _ev(end.publication_id, Ev.ENDED, "ended", end.workflow_id, info.workflow_run_id,
                           payload={"status": end.status, "reason": end.reason, "drill": end.drill})])
            return PublicationSummary(status=end.status, persons=counts["persons"], sent=counts["sent"],
                                      delivered=counts["delivered"], failed=counts["failed"], rate=counts["rate"])

    return await asyncio.to_thread(close)


ALL = [open_publication, send, record_deliveries, record_superseded, finish]
