"""One step of a running procedure, taken as a workflow update: the answer, or the procedure's refusal.

Every procedure (reporting chain, activation, review) refuses a step in its update validators
with an ApplicationError whose type says why (forbidden, conflict, invalid, not found). Here that
becomes an HTTP status and the validator's own words, and the refused attempt is recorded for a
supervisor (store/refusals.py): counted per caller, step and hour, the first of each hour in the
day's `refusals/<date>` audit chain, never in the procedure's own chain (a caller repeating a
refused step must not grow it, nor the sealed case file). A workflow that has ended refuses
everything with `ended`.
"""
from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from store import refusals
from store.db import session_scope


class Refused(Exception):
    def __init__(self, status: int, why: str):
        self.status, self.why = status, why
        super().__init__(why)


def _record_refusal(subject: str, kind: str, workflow_id: str, action: str, req: Any, why: str, status: int) -> None:
    with session_scope() as s:
        refusals.record(s, subject=subject, kind=kind, action=action, actor=req.actor, role=req.role,
                        workflow_id=workflow_id, status=status, reason=why, at=datetime.now(UTC))


async def run_step(client: Client, *, workflow_id: str, subject: str, refused_kind: str, action: str, update: Any,
                   req: Any, result_type: type, statuses: dict[str, int], ended: str) -> Any:
    """The update's result; or Refused(status, reason), recorded as `refused_kind` under `subject`."""
    try:
        return await client.get_workflow_handle(workflow_id).execute_update(update, req, result_type=result_type)
    except WorkflowUpdateFailedError as exc:
        cause = exc.cause
        kind = cause.type if isinstance(cause, ApplicationError) else None
        status, why = statuses.get(kind or "", 409), getattr(cause, "message", str(cause))
    except RPCError as exc:
        if exc.status != RPCStatusCode.NOT_FOUND:
            raise
        status, why = 409, ended
    await asyncio.to_thread(_record_refusal, subject, refused_kind, workflow_id, action, req, why, status)
    raise Refused(status, why)
