"""Contact freshness 通讯录核实: a round's deadline, opening it in shards, confirmations, closing it."""
from __future__ import annotations

import asyncio
from datetime import UTC, datetime, time
from zoneinfo import ZoneInfo

from sqlmodel import Session, col, func, select
from temporalio import activity

from activities.common import now as _now
from activities.delivery import REFUSED
from config import get_settings
from store.audit import NewEvent, append, seal_shards
from store.db import session_scope
from store.directory import Person
from store.duty import FAILING, ContactCheck, FreshnessRound, confirm_contact
from workflows.duty import DutyFlush
from workflows.escalation import TARGET, Contact, Target
from workflows.kit import names
from workflows.freshness import CloseRequest, Opened as FreshnessOpened, OpenRequest as FreshnessOpen, RoundSummary, ShardInfo


def round_deadline(settings, at: datetime, tz: str) -> datetime:
    """The next `round_by` day (local midnight) after `at`: confirmations are due before it."""
    zone = ZoneInfo(tz)
    month, day = (int(x) for x in settings.round_by.split("-"))
    here = at.astimezone(zone)
    for year in (here.year, here.year + 1):
        due = datetime.combine(datetime(year, month, day).date(), time(0), tzinfo=zone)
        if due > here:
            return due.astimezone(UTC)
    raise AssertionError("unreachable")


@activity.defn(name=names.Duty.FRESHNESS_OPEN)
async def freshness_open(req: FreshnessOpen) -> FreshnessOpened:
    info = activity.info()
    settings = get_settings()
    deadline = req.deadline or round_deadline(req.settings, req.at, settings.timezone)

    def work() -> FreshnessOpened:
        with session_scope() as s:
            row = s.get(FreshnessRound, req.round_id)
            if row is None:
                row = FreshnessRound(id=req.round_id, year=deadline.astimezone(ZoneInfo(settings.timezone)).year,
                                     started_at=req.at, deadline=deadline)
                s.add(row)
                s.flush()
            have = set(s.exec(select(ContactCheck.person_id).where(ContactCheck.round_id == req.round_id)))
            people = [p for p in s.exec(select(Person).order_by(col(Person.id))) if p.mobile]
            for n, p in enumerate(people):  # id order: a retry puts everyone in the same shard again
                if p.id in have:
                    continue
                target = Target(key=f"p/{p.id}", tier="freshness", label=p.name,
                                person=Contact(person_id=p.id, name=p.name, mobile=p.mobile), policy="ask")
                s.add(ContactCheck(round_id=req.round_id, person_id=p.id, name=p.name,
                                   shard=n // req.settings.shard_size, spec=TARGET.dump_python(target, mode="json")))
            s.flush()
            shards = dict(s.exec(select(ContactCheck.shard, func.count()).where(ContactCheck.round_id == req.round_id)
                                 .group_by(ContactCheck.shard)).all())
            row.total = sum(shards.values())
            info_shards = [ShardInfo(index=k, count=v) for k, v in sorted(shards.items())]
            append(s, [NewEvent(subject=req.round_id, kind="freshness.opened", step_id="opened",
                                workflow_id=info.workflow_id, run_id=info.workflow_run_id, actor=req.started_by,
                                at=req.at, payload={"deadline": deadline.isoformat(), "total": row.total,
                                                    "shards": [x.model_dump() for x in info_shards],
                                                    "settings_version": req.version})])
            return FreshnessOpened(deadline=deadline, total=row.total, shards=info_shards)

    return await asyncio.to_thread(work)


@activity.defn(name=names.Duty.FRESHNESS_LOAD)
async def freshness_load(round_id: str, shard: int) -> list[Target]:
    def read() -> list[Target]:
        with session_scope(write=False) as s:
            rows = s.exec(select(ContactCheck).where(ContactCheck.round_id == round_id, ContactCheck.shard == shard,
                                                     ContactCheck.state != "confirmed").order_by(col(ContactCheck.id)))
            return [TARGET.validate_python(r.spec) for r in rows]

    return await asyncio.to_thread(read)


def _freshness_progress(s: Session, req: DutyFlush, outcomes: dict, now: datetime) -> None:
    pids = {x.person_id for x in req.sends} | {r.person_id for r in req.records if r.person_id}
    if not pids:
        return
    rows = {r.person_id: r for r in s.exec(select(ContactCheck).where(
        ContactCheck.round_id == req.subject, col(ContactCheck.person_id).in_(list(pids))))}
    for send in req.sends:
        row = rows.get(send.person_id)
        if row is None:
            continue
        row.sends += 1
        row.asked_at = row.asked_at or now
        if row.state == "pending":
            row.state = "asked"
        if outcomes[send.key].status in REFUSED:
            row.bounced, row.last_error = True, outcomes[send.key].error or outcomes[send.key].status
        row.updated_at = now
    for r in req.records:
        row = rows.get(r.person_id or "")
        if r.kind == "ack":
            confirm_contact(s, req.subject, r.person_id or "", r.at, r.channel or "?")
        elif r.kind == "delivery" and row is not None:
            status = r.payload.get("status")
            if status in FAILING:
                row.bounced, row.last_error = True, r.payload.get("detail") or status
            elif status == "delivered":
                row.bounced, row.last_error = False, None
            row.updated_at = now


@activity.defn(name=names.Duty.FRESHNESS_CLOSE)
async def freshness_close(req: CloseRequest) -> RoundSummary:
    def work() -> RoundSummary:
        with session_scope() as s:
            rnd = s.get(FreshnessRound, req.round_id)
            rows = list(s.exec(select(ContactCheck).where(ContactCheck.round_id == req.round_id)))
            people = {p.id: p for p in s.exec(select(Person).where(col(Person.id).in_([r.person_id for r in rows])))}
            for r in rows:
                p = people.get(r.person_id)
                if r.state != "confirmed" and p and p.contact_confirmed_at and p.contact_confirmed_at >= rnd.started_at:
                    r.state, r.confirmed_at, r.confirmed_via = "confirmed", p.contact_confirmed_at, "late"
                elif r.state != "confirmed":
                    r.state = "unconfirmed"
                r.updated_at = _now()
            confirmed = [r.person_id for r in rows if r.state == "confirmed"]
            unconfirmed = sorted(r.person_id for r in rows if r.state == "unconfirmed")
            bounced = sorted(r.person_id for r in rows if r.bounced)
            rnd.status, rnd.closed_at = "closed", _now()
            rnd.confirmed, rnd.unconfirmed, rnd.bounced = len(confirmed), len(unconfirmed), len(bounced)
            append(s, [*seal_shards(s, req.round_id, req.workflow_id, req.run_id),  # each shard's chain
                       NewEvent(subject=req.round_id, kind="freshness.closed", step_id="closed",
                                workflow_id=req.workflow_id, run_id=req.run_id,
                                payload={"total": len(rows), "confirmed": len(confirmed), "unconfirmed": unconfirmed,
                                         "bounced": bounced, "counts": req.counts})])
            return RoundSummary(round_id=req.round_id, deadline=rnd.deadline, total=len(rows), confirmed=len(confirmed),
                                unconfirmed=unconfirmed, bounced=bounced)

    return await asyncio.to_thread(work)
