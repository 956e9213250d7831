"""Call-outs: the listing and one call-out's status (store queries), acknowledging on someone's behalf and
cancelling (workflow signals, audit). The REST routes (api/routes/callouts.py) and the console call these."""
from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, datetime
from typing import Any

from pydantic import Field
from sqlmodel import Session, col, func, select
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from api.services.answers import AnswerError, acknowledge
from api.services.dates import DateRange
from api.services.errors import ServiceError
from api.services.shapes import Out, Timestamp
from store.answers import answered_at
from store.audit import NewEvent, append
from store.callouts import Callout, CalloutRelay, CalloutTarget, relay_counts, relay_overdue
from store.db import session_scope
from store.directory import OrgUnit, Post
from store.replay import STATES  # a target's states, as the replay knows them
from workflows.callout import WarningCalloutWorkflow

class CalloutError(ServiceError):
    """A call-out refused (none such, ended, not called in it)."""


def find(callout_id: str) -> Callout | None:
    with session_scope(write=False) as s:
        return s.get(Callout, callout_id)


def target_dict(t: CalloutTarget, answered: datetime | None = None) -> dict[str, Any]:
    """A target as the API gives it; `answered`: when the API received the answer it has shown ahead of the
    workflow's record (store/answers.py `answered_at`)."""
    return {"person_id": t.person_id, "name": t.name, "tier": t.tier, "position": t.position_code,
            "org_unit": t.org_unit_id, "state": t.state, "shard": t.shard,
            "attempts": [{k: a.get(k) for k in ("channel", "at", "status", "purpose", "person_id")} for a in t.attempts],
            "answered_at": answered.isoformat() if answered else None,
            "acknowledged_at": t.acknowledged_at.isoformat() if t.acknowledged_at else None,
            "ack_channel": t.ack_channel, "ack_by": t.ack_by, "late": t.ack_late, "escalated_to": t.escalated_to}


def callout_list(session: Session, limit: int = 50, drill: bool | None = None, *,
                 dates: DateRange | None = None) -> list[dict[str, Any]]:
    """Call-outs, newest first, each with its targets counted by state (drill: None all, False real, True drills;
    `dates`: started in these local days, api.services.dates)."""
    stmt = select(Callout) if dates is None else dates.where(select(Callout), col(Callout.started_at))
    if drill is not None:
        stmt = stmt.where(col(Callout.drill).is_(drill))
    rows = list(session.exec(stmt.order_by(col(Callout.started_at).desc()).limit(max(1, min(limit, 500)))))
    counts: dict[str, Counter] = {r.id: Counter() for r in rows}
    if rows:
        for cid, state, n in session.exec(select(CalloutTarget.callout_id, CalloutTarget.state, func.count())
                                          .where(col(CalloutTarget.callout_id).in_(list(counts)))
                                          .group_by(CalloutTarget.callout_id, CalloutTarget.state)):
            counts[cid][state] = n
    return [{**r.model_dump(mode="json", exclude={"summary"}), "counts": dict(counts[r.id]),
             "total": sum(counts[r.id].values())} for r in rows]


def callout_detail(session: Session, callout_id: str, state: str | None = None, tier: str | None = None,
                   limit: int = 20000, offset: int = 0) -> dict[str, Any]:
    """One call-out with its counts by state and the targets chosen by state/tier/offset/limit.
    Raises CalloutError 404 (no such call-out), 422 (an unknown state)."""
    c = session.get(Callout, callout_id)
    if c is None:
        raise CalloutError(404, f"no call-out {callout_id!r}")
    if state is not None and state not in STATES:
        raise CalloutError(422, f"state: must be one of {', '.join(STATES)}")
    all_targets = list(session.exec(select(CalloutTarget).where(CalloutTarget.callout_id == callout_id)
                                    .order_by(CalloutTarget.shard, CalloutTarget.id)))
    counts = Counter(t.state for t in all_targets)
    shown = [t for t in all_targets if (state is None or t.state == state) and (tier is None or t.tier == tier)]
    shown = shown[max(offset, 0):max(offset, 0) + max(1, min(limit, 20000))]
    answered = answered_at(session, [t.id for t in shown if t.id is not None])
    return {**c.model_dump(mode="json"), "counts": dict(counts), "total": len(all_targets),
            "targets": [target_dict(t, answered.get(t.id)) for t in shown],
            "relay": relay_view(session, callout_id, all_targets)}


def relay_view(session: Session, callout_id: str, targets: list[CalloutTarget] | None = None) -> dict[str, Any] | None:
    """到户到人 per village: acknowledged, relayed (已到户), households reached, overdue; and the counts. None when
    the call-out asked no relay."""
    rows = list(session.exec(select(CalloutRelay).where(CalloutRelay.callout_id == callout_id)
                             .order_by(CalloutRelay.org_unit_id)))
    now = datetime.now(UTC)
    counts = relay_counts(rows, now)
    if counts is None:
        return None
    by_key = {t.target_key: t for t in (targets if targets is not None else session.exec(
        select(CalloutTarget).where(CalloutTarget.callout_id == callout_id,
                                    col(CalloutTarget.target_key).in_([r.target_key for r in rows]))))}
    units = {u.id: u.name for u in session.exec(select(OrgUnit).where(
        col(OrgUnit.id).in_([r.org_unit_id for r in rows])))}
    villages = []
    for r in rows:
        t = by_key.get(r.target_key)
        villages.append({"village": r.org_unit_id, "name": units.get(r.org_unit_id, r.org_unit_id),
                         "person_id": r.person_id, "target": r.target_key,
                         "acknowledged": bool(t and t.acknowledged_at), "relayed": r.state == "confirmed",
                         "state": r.state, "households": r.households, "overdue": relay_overdue(r, now),
                         "late": r.late, "on_behalf": r.on_behalf, "confirmed_by": r.confirmed_by,
                         "due_at": r.due_at.isoformat() if r.due_at else None,
                         "confirmed_at": r.confirmed_at.isoformat() if r.confirmed_at else None,
                         "escalated_to": r.escalated_to, "answers": r.answers})
    return {"counts": counts, "villages": villages}


def _relay_of(callout_id: str, person_id: str, reported_by: str | None) -> tuple[Callout | None, CalloutRelay | None, bool]:
    with session_scope(write=False) as s:
        c = s.get(Callout, callout_id)
        r = s.exec(select(CalloutRelay).where(CalloutRelay.callout_id == callout_id,
                                              CalloutRelay.person_id == person_id)).first()
        if r is None:  # the village's person, when their deputy acknowledged and was asked (workflows/relay.py)
            r = s.exec(select(CalloutRelay).join(CalloutTarget, (CalloutTarget.callout_id == CalloutRelay.callout_id)
                                                 & (CalloutTarget.target_key == CalloutRelay.target_key))
                       .where(CalloutRelay.callout_id == callout_id, CalloutTarget.person_id == person_id)).first()
        grid = reported_by is None or (r is not None and s.exec(select(Post.id).where(
            Post.person_id == reported_by, Post.position_code == GRID_WORKER,
            Post.org_unit_id == r.org_unit_id)).first() is not None)
        return c, r, grid


GRID_WORKER = "grid_worker"
MAX_HOUSEHOLDS = 100000


async def confirm_relay(client: Client, callout_id: str, person_id: str, households: int, actor: str,
                        reported_by: str | None = None, note: str | None = None) -> dict[str, Any]:
    """到户: record that `person_id`'s village relay is done (`households` reached), entered by `actor` (the duty
    office) on their behalf, as `reported_by` (a grid worker 网格员 of that village) or the person told them.
    Recorded on time or late, never refused for being late. Raises CalloutError 404 (no such call-out, or no
    relay asked of that person), 422 (households out of range, or `reported_by` is not a grid worker of the
    village)."""
    if not 0 <= households <= MAX_HOUSEHOLDS:
        raise CalloutError(422, f"households: must be between 0 and {MAX_HOUSEHOLDS}")
    c, relay, grid = await asyncio.to_thread(_relay_of, callout_id, person_id, reported_by)
    if c is None:
        raise CalloutError(404, f"no call-out {callout_id!r}")
    if relay is None:
        raise CalloutError(404, f"no relay (到户) was asked of {person_id!r} in {callout_id!r}")
    if not grid:
        raise CalloutError(422, f"reported_by: {reported_by!r} is not a grid worker (网格员) of village "
                                f"{relay.org_unit_id!r}")
    now = datetime.now(UTC)
    try:
        answered = await acknowledge(client, callout_id, person_id, "proxy", actor=actor, note=note,
                                     ref=f"relay:{actor}:{person_id}:{now.timestamp()}", at=now,
                                     households=households, reported_by=reported_by)
    except AnswerError as exc:
        raise CalloutError(404, str(exc)) from exc
    return {"relayed": person_id, "households": households, **answered.as_dict()}


async def ack_on_behalf(client: Client, callout_id: str, person_id: str, note: str, actor: str) -> dict[str, Any]:
    """Record that `person_id` answered, told by `actor` (e.g. after a phone call).
    Raises CalloutError 404 (no such call-out, or the person was not called in it)."""
    if await asyncio.to_thread(find, callout_id) is None:
        raise CalloutError(404, f"no call-out {callout_id!r}")
    now = datetime.now(UTC)
    try:
        answered = await acknowledge(client, callout_id, person_id, "proxy", actor=actor, note=note,
                                     ref=f"proxy:{actor}:{person_id}:{now.timestamp()}", at=now)
    except AnswerError as exc:
        raise CalloutError(404, str(exc)) from exc
    return {"acknowledged": person_id, **answered.as_dict()}


def _record_cancel(callout_id: str, reason: str, actor: str, gone: str | None) -> None:
    with session_scope() as s:
        append(s, [NewEvent(subject=callout_id, kind="callout.cancel_requested", step_id=f"cancel/{actor}",
                            actor=actor, payload={"reason": reason, "delivered": gone is None,
                                                  **({"not_running": gone} if gone else {})})])


async def cancel(client: Client, callout_id: str, reason: str, actor: str) -> dict[str, Any]:
    """End a running call-out early (the workflow tells everyone already reached) and record the request.

    Raises CalloutError 404 (no such call-out), 409 (it has ended, or its workflow is gone: then the
    request is recorded all the same). Temporal unreachable: the RPCError goes up (503 in api/app.py),
    nothing is recorded, the caller sends it again."""
    c = await asyncio.to_thread(find, callout_id)
    if c is None:
        raise CalloutError(404, f"no call-out {callout_id!r}")
    if c.status != "running":
        raise CalloutError(409, f"call-out {callout_id!r} has already ended ({c.status})")
    gone = None
    try:
        await client.get_workflow_handle(callout_id).signal(WarningCalloutWorkflow.cancel, reason)
    except RPCError as exc:
        if exc.status != RPCStatusCode.NOT_FOUND:
            raise
        gone = str(exc)  # the workflow ended (or was removed) and the record has not caught up
    await asyncio.to_thread(_record_cancel, callout_id, reason, actor, gone)
    if gone is not None:
        raise CalloutError(409, f"call-out {callout_id!r} is no longer running in Temporal (ended or removed): "
                                "nothing to cancel; your request is recorded / 叫应流程已结束,取消请求已记录")
    return {"canceling": callout_id}


# ------------------------------------------------------------------ the shapes the routes answer with


class CalloutOut(Out):
    """A call-out row (its summary left out of the listing) with its targets counted by state."""

    id: str
    warning_id: str | None = None
    plan_id: str
    plan_version: str
    level: str
    category: str
    title: str = ""
    drill: bool = False
    status: str = Field(description="running | completed | canceled")
    started_at: datetime
    ended_at: datetime | None = None
    counts: dict[str, int] = Field(description="targets by state")
    total: int


class TargetOut(Out):
    person_id: str
    name: str
    tier: str
    position: str
    org_unit: str
    state: str = Field(description=", ".join(STATES))
    shard: int
    attempts: list[dict[str, Any]]
    answered_at: Timestamp | None = Field(description="when the API stored the person's answer: shown on the board "
                                          "(已收到回复,正在记录) before the workflow records it (acknowledged_at)")
    acknowledged_at: Timestamp | None
    ack_channel: str | None
    ack_by: str | None
    late: bool | None
    escalated_to: list[str]


class CalloutDetailOut(CalloutOut):
    summary: dict[str, Any] | None = None
    targets: list[TargetOut]
    relay: dict[str, Any] | None = Field(default=None, description="到户到人: counts (requested, confirmed, late, "
                                         "households, open, overdue, escalated, on_behalf) and per village "
                                         "(acknowledged, relayed, households, overdue); null without a relay")


class RelayOut(Out):
    relayed: str = Field(description="the person whose relay is confirmed")
    households: int
    recorded: str = Field(description="taken | late | repeat")
    workflows: int
    late: int
    late_by_s: float | None = None


class CancelOut(Out):
    canceling: str = Field(description="the call-out's id")
