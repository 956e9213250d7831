"""Shift handovers 交接班: opened (by the schedule or a duty officer, once per shift change), edited, handed
over and taken over as workflow updates; the list and one handover with its timeline."""
from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from sqlmodel import col, select
from temporalio.client import Client
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError

from api.services.duty.common import DutyError, duty_settings, events, get_row, update_step
from config import Settings
from definitions.loader import Library
from store.db import session_scope
from store.duty import Handover
from workflows.handover import HandoverInput, HandoverView, HandoverWorkflow, handover_id_for


async def start_handover(client: Client, lib: Library, settings: Settings, shift_at: datetime | None,
                         actor: str) -> tuple[HandoverView, bool]:
    duty = duty_settings(lib)
    at = (shift_at or datetime.now(UTC)).astimezone(UTC).replace(second=0, microsecond=0)
    found = await asyncio.to_thread(_handover_at, at)  # the schedule's, if it opened this change's already
    hid, existed = found or handover_id_for(at), found is not None
    if not existed:
        try:
            await client.start_workflow(HandoverWorkflow.run, HandoverInput(settings=duty.handover,
                                                                            version=duty.versions.get("handover", ""),
                                                                            shift_at=at, started_by=actor),
                                        id=hid, task_queue=settings.task_queue,
                                        id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE)
        except WorkflowAlreadyStartedError:
            existed = True
    try:
        view = await client.get_workflow_handle(hid).execute_update(HandoverWorkflow.opened_view, result_type=HandoverView)
    except RPCError as exc:
        raise DutyError(409, f"the handover {hid!r} exists and has ended") from exc
    return view, existed


def _handover_at(at: datetime) -> str | None:
    with session_scope(write=False) as s:
        row = s.exec(select(Handover).where(Handover.shift_at >= at, Handover.shift_at < at + timedelta(minutes=1))
                     .order_by(col(Handover.opened_at))).first()
        return row.id if row else None


async def handover_step(client: Client, handover_id: str, action: str, req) -> HandoverView:
    row = await asyncio.to_thread(get_row, Handover, handover_id)
    if row is None:
        raise DutyError(404, f"no handover {handover_id!r}")
    update = {"note": HandoverWorkflow.edit_note, "hand_over": HandoverWorkflow.hand_over,
              "take_over": HandoverWorkflow.take_over}[action]
    return await update_step(client, handover_id, handover_id, update, req, HandoverView, "handover")


def handover_list(limit: int = 50) -> list[dict]:
    with session_scope(write=False) as s:
        rows = s.exec(select(Handover).order_by(col(Handover.shift_at).desc()).limit(limit))
        return [r.model_dump(mode="json", exclude={"note"}) | {"items": len(r.note.get("items", []))} for r in rows]


def handover_detail(handover_id: str) -> dict | None:
    row = get_row(Handover, handover_id)
    if row is None:
        return None
    out = row.model_dump(mode="json")
    late = None
    if row.taken_over_at and row.due_at:
        late = max(0, int((row.taken_over_at - row.due_at).total_seconds()))
    out["late_by_s"] = late
    out["timeline"] = events(handover_id)
    return out
