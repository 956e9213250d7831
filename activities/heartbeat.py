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
from temporalio.worker import ActivityInboundInterceptor, ExecuteActivityInput, Interceptor

EVERY_S = 2.0


class _Beating(ActivityInboundInterceptor):
    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        if not asyncio.iscoroutinefunction(input.fn):  # sync activities run on threads; none here
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


class HeartbeatInterceptor(Interceptor):
    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _Beating(next)
