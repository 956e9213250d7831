"""Shared by the duty-day workflow tests: the definitions, the database, ending what a test started."""
from __future__ import annotations

import asyncio
from pathlib import Path

from sqlmodel import select

from definitions.loader import load_or_raise
from definitions.schema.duty import DutySettings
from store.audit import AuditEvent
from store.db import session_scope
from store.messages import OutboxMessage

DEFINITIONS = Path(__file__).resolve().parents[2] / "definitions"


def duty_settings() -> DutySettings:
    settings = load_or_raise(DEFINITIONS).duty()
    assert settings is not None
    return settings


def events(subject: str, prefix: str = "") -> list[AuditEvent]:
    with session_scope(write=False) as s:
        rows = s.exec(select(AuditEvent).where(AuditEvent.subject == subject).order_by(AuditEvent.seq))
        return [e for e in rows if e.kind.startswith(prefix)]


def kinds(subject: str, prefix: str = "") -> list[str]:
    return [e.kind for e in events(subject, prefix)]


def outbox(subject: str, person_id: str | None = None) -> list[OutboxMessage]:
    with session_scope(write=False) as s:
        stmt = select(OutboxMessage).where(OutboxMessage.subject == subject)
        if person_id:
            stmt = stmt.where(OutboxMessage.person_id == person_id)
        return list(s.exec(stmt.order_by(OutboxMessage.id)))


def row(model, key):
    with session_scope(write=False) as s:
        return s.get(model, key)


def rows(model, **where) -> list:
    with session_scope(write=False) as s:
        stmt = select(model)
        for k, v in where.items():
            stmt = stmt.where(getattr(model, k) == v)
        return list(s.exec(stmt))


async def terminate(client, workflow_ids: list[str]) -> None:
    """End what a test left running (after its activities), so no timer holds the test server's clock."""
    from temporalio.client import WorkflowExecutionStatus
    from temporalio.service import RPCError

    for wid in workflow_ids:
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
