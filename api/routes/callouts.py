"""Call-outs: status, targets, acknowledging on someone's behalf, cancelling."""
from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, Field
from sqlmodel import col, func, select
from temporalio.service import RPCError, RPCStatusCode

from api.deps import Anyone, DutyOfficer, Offset, ReadSessionDep, TemporalDep, limit_param
from api.services.answers import AnswerError, acknowledge
from store.audit import NewEvent, append
from store.callouts import Callout, CalloutTarget
from store.db import session_scope
from workflows.callout import WarningCalloutWorkflow

router = APIRouter(prefix="/api/callouts", tags=["callouts"])
STATES = ("pending", "notified", "acknowledged", "escalated", "unreachable", "canceled")


def _callout(callout_id: str) -> Callout | None:
    with session_scope(write=False) as s:
        return s.get(Callout, callout_id)


def _target(t: CalloutTarget) -> dict:
    return {"person_id": t.person_id, "name": t.name, "tier": t.tier, "position": t.position_code,
            "org_unit": t.org_unit_id, "state": t.state, "shard": t.shard,
            "attempts": [{k: a.get(k) for k in ("channel", "at", "status", "purpose", "person_id")} for a in t.attempts],
            "acknowledged_at": t.acknowledged_at.isoformat() if t.acknowledged_at else None,
            "ack_channel": t.ack_channel, "ack_by": t.ack_by, "late": t.ack_late, "escalated_to": t.escalated_to}


@router.get("", summary="Call-outs, newest first, with counts by state")
def list_callouts(session: ReadSessionDep, _: Anyone, limit: Annotated[int, limit_param(500)] = 50,
                  drill: bool | None = None) -> list[dict]:
    stmt = select(Callout)
    if drill is not None:  # drill=false: real call-outs only (drill=true: drills only)
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


@router.get("/{callout_id}", summary="One call-out: status, counts by state and every target")
def get_callout(callout_id: str, session: ReadSessionDep, _: Anyone, state: str | None = None, tier: str | None = None,
                limit: Annotated[int, limit_param(20000)] = 20000, offset: Offset = 0) -> dict:
    c = session.get(Callout, callout_id)
    if c is None:
        raise HTTPException(404, detail=f"no call-out {callout_id!r}")
    if state is not None and state not in STATES:
        raise HTTPException(422, detail=f"state: must be one of {', '.join(STATES)}")
    all_targets = list(session.exec(select(CalloutTarget).where(CalloutTarget.callout_id == callout_id)
                                    .order_by(CalloutTarget.shard, CalloutTarget.id)))
    counts = Counter(t.state for t in all_targets)
    shown = [t for t in all_targets if (state is None or t.state == state) and (tier is None or t.tier == tier)]
    shown = shown[max(offset, 0):max(offset, 0) + max(1, min(limit, 20000))]
    return {**c.model_dump(mode="json"), "counts": dict(counts), "total": len(all_targets),
            "targets": [_target(t) for t in shown]}


class ProxyAck(BaseModel):
    note: str = Field(min_length=1, max_length=1000, description="how the person was reached, e.g. 电话确认")


@router.post("/{callout_id}/targets/{person_id}/ack", summary="Confirm on someone's behalf (e.g. after a phone call)")
async def ack_on_behalf(callout_id: str, person_id: str, body: ProxyAck, client: TemporalDep,
                        caller: DutyOfficer) -> dict:
    if await asyncio.to_thread(_callout, callout_id) is None:
        raise HTTPException(404, detail=f"no call-out {callout_id!r}")
    now = datetime.now(UTC)
    try:
        answered = await acknowledge(client, callout_id, person_id, "proxy", actor=caller.actor, note=body.note,
                                 ref=f"proxy:{caller.actor}:{person_id}:{now.timestamp()}", at=now)
    except AnswerError as exc:
        raise HTTPException(404, detail=str(exc)) from exc
    return {"acknowledged": person_id, **answered.as_dict()}


class CancelBody(BaseModel):
    reason: str = Field(min_length=1, max_length=500)


@router.post("/{callout_id}/cancel", summary="End a call-out early; everyone already reached is told")
async def cancel(callout_id: str, body: CancelBody, client: TemporalDep, caller: DutyOfficer) -> dict:
    c = await asyncio.to_thread(_callout, callout_id)
    if c is None:
        raise HTTPException(404, detail=f"no call-out {callout_id!r}")
    if c.status != "running":
        raise HTTPException(409, detail=f"call-out {callout_id!r} has already ended ({c.status})")
    gone = None
    try:
        await client.get_workflow_handle(callout_id).signal(WarningCalloutWorkflow.cancel, body.reason)
    except RPCError as exc:
        if exc.status != RPCStatusCode.NOT_FOUND:
            raise  # Temporal unreachable: 503 (api/app.py), nothing recorded, send it again
        gone = str(exc)  # the workflow ended (or was removed) and the record has not caught up

    def record() -> None:
        with session_scope() as s:
            append(s, [NewEvent(subject=callout_id, kind="callout.cancel_requested", step_id=f"cancel/{caller.actor}",
                                actor=caller.actor, payload={"reason": body.reason, "delivered": gone is None,
                                                             **({"not_running": gone} if gone else {})})])

    await asyncio.to_thread(record)
    if gone is not None:
        raise HTTPException(409, detail=f"call-out {callout_id!r} is no longer running in Temporal (ended or removed): "
                                        "nothing to cancel; your request is recorded / 叫应流程已结束,取消请求已记录")
    return {"canceling": callout_id}
