"""Drive an incident reporting chain on a Temporal test environment with the real activities and database."""
from __future__ import annotations

import asyncio
import uuid
from datetime import datetime
from pathlib import Path

from sqlmodel import select

from definitions.loader import load_or_raise
from definitions.schema.reporting import Casualties, Severity
from store.audit import AuditEvent
from store.db import session_scope
from store.incidents import Incident, IncidentDeadline, ReportReceipt
from store.messages import OutboxMessage
from workflows.reporting import Draft, IncidentInfo, IncidentReportingWorkflow, ReportingInput

DEFINITIONS = Path(__file__).resolve().parents[2] / "definitions"


def incident_input(rules: str = "district", deaths: int = 0, injured: int = 0, trapped: int = 0,
                   severity: Severity | None = None, category: str = "accident", subtype: str = "建筑施工",
                   received_at: datetime | None = None, reporting_unit_id: str | None = None,
                   max_history: int = 8000) -> ReportingInput:
    loaded = load_or_raise(DEFINITIONS).reporting_rules(rules)
    assert loaded is not None
    iid = f"INC-T{uuid.uuid4().hex[:8].upper()}"
    return ReportingInput(
        incident=IncidentInfo(incident_id=iid, title="第1街道某工地脚手架坍塌", received_at=received_at, source="119",
                              category=category, subtype=subtype, severity=severity, town_id="330110001",
                              place="第1街道青溪路88号工地", summary="脚手架坍塌,有人员被压",
                              casualties=Casualties(deaths=deaths, injured=injured, trapped=trapped),
                              reporting_unit="区消防救援大队", reporting_unit_id=reporting_unit_id, reporter="王队长",
                              created_by="p-duty_cadre"),
        rules=loaded.model, rules_version=loaded.version, max_history=max_history)


def workflow_id(inp: ReportingInput) -> str:
    return f"incident-{inp.incident.incident_id}"


async def start(client, task_queue: str, inp: ReportingInput):
    handle = await client.start_workflow(IncidentReportingWorkflow.run, inp, id=workflow_id(inp), task_queue=task_queue)
    await handle.execute_update(IncidentReportingWorkflow.opened_view)
    return handle


def draft(deaths: int = 0, injured: int = 2, what: str = "脚手架坍塌,2人受伤送医", **kw) -> Draft:
    return Draft(place="第1街道青溪路88号工地", what_happened=what, measures="消防、120已到场,现场已封控",
                 trend="无继续坍塌迹象", next_steps="排查周边工地", casualties=Casualties(deaths=deaths, injured=injured), **kw)


def events(subject: str, prefix: str = "") -> list[AuditEvent]:
    with session_scope(write=False) as s:
        rows = s.exec(select(AuditEvent).where(AuditEvent.subject == subject).order_by(AuditEvent.seq))
        return [e for e in rows if e.kind.startswith(prefix)]


def outbox(subject: str, person_id: str | None = None) -> list[OutboxMessage]:
    with session_scope(write=False) as s:
        stmt = select(OutboxMessage).where(OutboxMessage.subject == subject)
        if person_id:
            stmt = stmt.where(OutboxMessage.person_id == person_id)
        return list(s.exec(stmt.order_by(OutboxMessage.id)))


def receipts(incident_id: str, seq: int) -> dict[str, ReportReceipt]:
    with session_scope(write=False) as s:
        return {r.recipient_id: r for r in s.exec(select(ReportReceipt).where(
            ReportReceipt.incident_id == incident_id, ReportReceipt.seq == seq))}


def deadlines(incident_id: str) -> dict[str, IncidentDeadline]:
    with session_scope(write=False) as s:
        return {d.key: d for d in s.exec(select(IncidentDeadline).where(IncidentDeadline.incident_id == incident_id))}


def incident(incident_id: str) -> Incident | None:
    with session_scope(write=False) as s:
        return s.get(Incident, incident_id)


async def terminate_incidents(client) -> None:
    """End every reporting chain of this test's database: a workflow left waiting holds the test server's clock.

    Each is terminated once no activity of it is running: the time-skipping server keeps time
    locked for an activity whose workflow was terminated under it.
    """
    from temporalio.client import WorkflowExecutionStatus
    from temporalio.service import RPCError

    with session_scope(write=False) as s:
        ids = list(s.exec(select(Incident.workflow_id)))
    for wid in ids:
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
