"""Drive a plan activation on a Temporal test environment with the real activities and database."""
from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlmodel import select

from api.services import answers
from definitions.loader import load_or_raise
from definitions.schema.plans import ResponsePlan, Season
from definitions.schema.reporting import Severity
from store.activations import Activation, ActivationItem
from store.audit import AuditEvent
from store.db import session_scope
from store.messages import OutboxMessage
from workflows.activation import (
    ActivationInfo,
    ActivationInput,
    PlanActivationWorkflow,
    activation_id_of,
    subject_of,
    workflow_id_of,
)

DEFINITIONS = Path(__file__).resolve().parents[2] / "definitions"


def plan(plan_id: str = "public_health") -> ResponsePlan:
    loaded = load_or_raise(DEFINITIONS).response_plan(plan_id)
    assert loaded is not None
    return loaded.model


def with_seasons(p: ResponsePlan, *, in_flood: bool) -> ResponsePlan:
    """The plan with its special periods moved so that today is (or is not) in the flood season, never in another."""
    today = datetime.now(UTC) + timedelta(hours=8)
    start, end = (today - timedelta(days=3), today + timedelta(days=30)) if in_flood else (
        today + timedelta(days=60), today + timedelta(days=120))
    flood = Season(id="flood", name_zh="汛期", start=start.strftime("%m-%d"), end=end.strftime("%m-%d"))
    fire = Season(id="forest_fire", name_zh="森林防火期", start=(today + timedelta(days=150)).strftime("%m-%d"),
                  end=(today + timedelta(days=200)).strftime("%m-%d"))
    return p.model_copy(update={"dispatch": p.dispatch.model_copy(update={"consult_in": [flood, fire]})})


def activation_input(plan_id: str = "public_health", level: Severity = Severity.IV, town: str | None = "330110001",
                     by: str = "p-duty_chief", role: str = "duty_chief", max_history: int = 8000,
                     the_plan: ResponsePlan | None = None) -> ActivationInput:
    iid = f"INC-A{uuid.uuid4().hex[:8].upper()}"
    p = the_plan or plan(plan_id)
    return ActivationInput(
        info=ActivationInfo(activation_id=activation_id_of(iid, p.id), incident_id=iid, incident_title="第1街道某小区聚集性疫情",
                            town_id=town, level=level, reason="初筛阳性3例,研判启动响应", activated_by=by,
                            activated_role=role),
        plan=p, plan_version="test", max_history=max_history)


async def start(client, task_queue: str, inp: ActivationInput):
    handle = await client.start_workflow(PlanActivationWorkflow.run, inp, id=workflow_id_of(inp.info.activation_id),
                                         task_queue=task_queue)
    await handle.execute_update(PlanActivationWorkflow.opened_view)
    return handle


def subject(inp: ActivationInput) -> str:
    return subject_of(inp.info.activation_id)


def events(subj: str, prefix: str = "") -> list[AuditEvent]:
    with session_scope(write=False) as s:
        rows = s.exec(select(AuditEvent).where(AuditEvent.subject == subj).order_by(AuditEvent.seq))
        return [e for e in rows if e.kind.startswith(prefix)]


def outbox(subj: str, person_id: str | None = None) -> list[OutboxMessage]:
    with session_scope(write=False) as s:
        stmt = select(OutboxMessage).where(OutboxMessage.subject == subj)
        if person_id:
            stmt = stmt.where(OutboxMessage.person_id == person_id)
        return list(s.exec(stmt.order_by(OutboxMessage.id)))


def row(activation_id: str) -> Activation | None:
    with session_scope(write=False) as s:
        return s.get(Activation, activation_id)


def items(activation_id: str) -> dict[str, ActivationItem]:
    with session_scope(write=False) as s:
        return {i.item_id: i for i in s.exec(select(ActivationItem).where(ActivationItem.activation_id == activation_id))}


async def ack(client, inp: ActivationInput, person_id: str, channel: str = "sms", ref: str | None = None) -> int:
    return await answers.acknowledge(client, subject(inp), person_id, channel, ref=ref or f"t:{person_id}:{uuid.uuid4().hex[:6]}")


async def terminate_activations(client) -> None:
    """End every activation of this test's database and every review it started.

    A workflow left waiting holds the time-skipping server's clock; each is terminated
    once no activity of it is running (the test server keeps time locked otherwise).
    """
    from temporalio.client import WorkflowExecutionStatus
    from temporalio.service import RPCError

    with session_scope(write=False) as s:
        rows = list(s.exec(select(Activation)))
    for wid in sorted({f"review-{r.incident_id}" for r in rows}):  # no worker runs it here: end it at once
        try:
            await client.get_workflow_handle(wid).terminate("test over")
        except RPCError:
            pass
    for wid in [r.workflow_id for r in rows]:
        handle = client.get_workflow_handle(wid)
        try:
            for _ in range(200):
                desc = await handle.describe()
                if desc.status != WorkflowExecutionStatus.RUNNING:
                    break
                raw = desc.raw_description
                if not raw.pending_activities and not raw.HasField("pending_workflow_task"):
                    await handle.terminate("test over")
                    break
                await asyncio.sleep(0.05)
        except RPCError:
            pass
