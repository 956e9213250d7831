"""到户到人: send and record one batch of a call-out's relay episode (workflows/relay.py), and keep the relay's
read model (store/callouts.CalloutRelay) in the same transaction."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select
from temporalio import activity

from activities.delivery import Outcome
from activities.escalation import Batch, ack_links, send_and_record
from store.callouts import CalloutRelay, CalloutTarget
from store.db import session_scope
from store.directory import OrgUnit
from workflows.escalation import FlushResult, Record, Send
from workflows.kit import names
from workflows.kit.events import Relay as Ev
from workflows.relay import CONFIRMED, LATE, REQUESTED, RelayFlush


def _villages(req: RelayFlush) -> dict[str, str]:
    """target key -> the village's name (the texts say which village)."""
    keys = {s.target_key for s in req.sends}
    if not keys:
        return {}
    with session_scope(write=False) as s:
        rows = s.exec(select(CalloutTarget.target_key, OrgUnit.name).join(
            OrgUnit, OrgUnit.id == CalloutTarget.org_unit_id).where(
            CalloutTarget.callout_id == req.callout_id, col(CalloutTarget.target_key).in_(list(keys))))
        return {k: n for k, n in rows}


def render(req: RelayFlush, villages: dict[str, str]):
    drill = "【演练】" if req.drill else ""

    def text(send: Send, code: str | None, link: str | None) -> tuple[str, str | None]:
        village = villages.get(send.target_key) or send.about
        if send.purpose == "escalate":
            body = req.relay.escalate_zh.format(village=village)
        elif send.purpose == "inform":
            body = req.relay.inform_zh.format(village=village)
        else:
            body = req.relay.request_zh.format(village=village)
        if link and send.purpose in ("notify", "escalate"):
            body += f" 或点击 {link}"
        return drill + body, (drill + body if send.channel == "voice" else None)

    return text


def save(req: RelayFlush):
    def write(s: Session, outcomes: dict[str, Outcome], now: datetime) -> None:
        keys = {r.target_key for r in req.records if r.target_key}
        if not keys:
            return
        rows = {r.target_key: r for r in s.exec(select(CalloutRelay).where(
            CalloutRelay.callout_id == req.callout_id, col(CalloutRelay.target_key).in_(list(keys))))}
        for r in req.records:
            if not r.target_key:
                continue
            row = rows.get(r.target_key)
            if row is None:
                if r.kind != REQUESTED:
                    continue  # (a late answer of a village whose relay was never asked: on record in the trail)
                row = rows[r.target_key] = CalloutRelay(callout_id=req.callout_id, target_key=r.target_key)
                s.add(row)
            apply(row, r)
            row.updated_at = now
    return write


def apply(row: CalloutRelay, r: Record) -> None:
    p: dict[str, Any] = r.payload
    if r.kind == REQUESTED:
        row.org_unit_id, row.person_id, row.requested_at = p.get("village") or "", r.person_id or "", r.at
        row.due_at = datetime.fromisoformat(p["due_at"]) if p.get("due_at") else None
    elif r.kind in (CONFIRMED, LATE):
        row.answers += 1
        if p.get("again") and p.get("households") is not None:
            row.households = p["households"]  # the person's own later figure (a correction)
        if row.confirmed_at is None:
            row.confirmed_at, row.households, row.confirmed_by = r.at, p.get("households"), p.get("by")
            row.on_behalf, row.late, row.state = bool(p.get("on_behalf")), r.kind == LATE, "confirmed"
    elif r.kind == "escalated":
        if r.person_id and r.person_id not in row.escalated_to:
            row.escalated_to = [*row.escalated_to, r.person_id]
        if row.state == "requested":
            row.state = "escalated"
    elif r.kind in ("unreachable", "canceled") and row.state != "confirmed":
        row.state = r.kind


@activity.defn(name=names.Callout.RELAY_FLUSH)
async def flush(req: RelayFlush) -> FlushResult:
    villages = _villages(req)
    batch = Batch(subject=req.callout_id, workflow_id=req.workflow_id, run_id=req.run_id, episode="relay",
                  kind=Ev.EPISODE, sends=req.sends, records=req.records, meta={"relay": True})
    result = await send_and_record(batch, render(req, villages), links=ack_links(req.callout_id), save=save(req))
    return FlushResult.model_validate(result)
