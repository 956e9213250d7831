"""Audit appends on behalf of workflows (idempotent: event ids derive from workflow id + step id)."""
from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field
from temporalio import activity

from store.audit import NewEvent, append
from workflows.kit import names
from store.db import session_scope


class AuditRecord(BaseModel):
    subject: str
    kind: str
    step_id: str
    workflow_id: str | None = None
    run_id: str | None = None
    actor: str = "system"
    channel: str | None = None
    at: datetime | None = None
    payload: dict[str, Any] = Field(default_factory=dict)

    def new_event(self) -> NewEvent:
        return NewEvent(**self.model_dump())


@activity.defn(name=names.Audit.APPEND)
async def append_audit(records: list[AuditRecord]) -> int:
    def write() -> int:
        with session_scope() as s:
            return len(append(s, [r.new_event() for r in records]))

    return await asyncio.to_thread(write)
