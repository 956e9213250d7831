"""Every activity heartbeats while it runs, so that a worker killed mid-activity is noticed in
seconds (the activity's heartbeat timeout) rather than at its start-to-close timeout.

A worker-wide interceptor: a small task beats every `EVERY_S` seconds for as long as the
activity's coroutine runs, including while it waits on a database transaction in a thread.
The workflows set `heartbeat_timeout` to a few beats, all alike (workflows/common.py).
"""
from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from temporalio import activity
from temporalio.exceptions import ApplicationError, CancelledError
from temporalio.worker import ActivityInboundInterceptor, ExecuteActivityInput, Interceptor

EVERY_S = 2.0
MAX_ERROR = 300


def mask_text(text: str) -> str:
    from store.redact import mask_text as mask

    return mask(text)


class _Beating(ActivityInboundInterceptor):
    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        if not asyncio.iscoroutinefunction(input.fn) or activity.info().is_local:
            # sync activities run on threads (none here); a local activity is its workflow task's, which Temporal
            # times out and the SDK heartbeats
            return await super().execute_activity(input)

        async def beat() -> None:
            while True:
                await asyncio.sleep(EVERY_S)
                activity.heartbeat()

        ticker = asyncio.create_task(beat())
        try:
            return await super().execute_activity(input)
        finally:
            ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await ticker


def short_error(exc: BaseException) -> ApplicationError:
    """What Temporal gets for an activity's unexpected error: its type and first line, cut short.
    A database error's text quotes the whole statement and its parameters (a 500-row INSERT: the
    failure went past Temporal's size limit and was dropped), and may quote personal data."""
    from sqlalchemy.exc import SQLAlchemyError

    cause = getattr(exc, "orig", None) if isinstance(exc, SQLAlchemyError) else None
    first = (str(cause if cause is not None else exc).strip().splitlines() or [""])[0]
    name = type(cause).__name__ if cause is not None else type(exc).__name__
    return ApplicationError(mask_text(f"{name}: {first}"[:MAX_ERROR]), type=name)


class _ShortErrors(ActivityInboundInterceptor):
    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        try:
            return await super().execute_activity(input)
        except (ApplicationError, asyncio.CancelledError, CancelledError):
            raise
        except Exception as exc:  # noqa: BLE001 - retried by Temporal as before, with a short message
            raise short_error(exc) from None


class HeartbeatInterceptor(Interceptor):
    """Every activity heartbeats while it runs, and fails with a short message (`short_error`)."""

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _ShortErrors(_Beating(next))
