"""Drive a work order on a Temporal test environment with the real activities and database."""
from __future__ import annotations

import uuid
from pathlib import Path

from sqlmodel import select

from definitions.loader import load_or_raise
from store.db import session_scope
from store.workorders import WorkOrder, WorkOrderAssignment
from workflows.workorder import WorkOrderInfo, WorkOrderInput, WorkOrderWorkflow, workorder_workflow_id

DEFINITIONS = Path(__file__).resolve().parents[2] / "definitions"


def order_input(category: str = "积水内涝", urgency: str = "normal", source: str = "12345", town_id: str | None = "330110001",
                proposed: str | None = None, phone: str | None = "+8613900001111") -> WorkOrderInput:
    loaded = load_or_raise(DEFINITIONS).workorder_rules()
    ticket = f"T{uuid.uuid4().hex[:10].upper()}"
    return WorkOrderInput(info=WorkOrderInfo(
        id=workorder_workflow_id(source, ticket), source=source, ticket=ticket, category=category, urgency=urgency,
        place="青溪路与河西街交叉口", town_id=town_id, town_name="第1街道" if town_id else "", words="路口积水没过膝盖,车辆熄火",
        caller_phone=phone, proposed_unit=proposed or loaded.model.propose(category, town_id), created_by="p-duty_staff"),
        rules=loaded.model, rules_version=loaded.version)


async def start(client, task_queue: str, inp: WorkOrderInput):
    handle = await client.start_workflow(WorkOrderWorkflow.run, inp, id=inp.info.id, task_queue=task_queue)
    await handle.execute_update(WorkOrderWorkflow.opened_view)
    return handle


def row(workorder_id: str) -> WorkOrder | None:
    with session_scope(write=False) as s:
        return s.get(WorkOrder, workorder_id)


def assignments(workorder_id: str) -> list[WorkOrderAssignment]:
    with session_scope(write=False) as s:
        return list(s.exec(select(WorkOrderAssignment).where(WorkOrderAssignment.work_order_id == workorder_id)
                           .order_by(WorkOrderAssignment.seq)))


async def terminate_workorders(client) -> None:
    """End every work order of this test's database (a workflow left waiting holds the test server's clock)."""
    from tests.workflows.duty_helpers import terminate

    with session_scope(write=False) as s:
        ids = list(s.exec(select(WorkOrder.id)))
    await terminate(client, ids)
