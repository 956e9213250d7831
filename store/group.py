"""Group commit: work that arrives together is written together, in one transaction on a worker thread, while
the previous batch is being written. Each caller still hears its own result only after the commit; under a
burst the commits stop queueing one behind another on SQLite's write lock (and PostgreSQL's fsync). Lookups that
every answer makes (which workflows wait for this person, was this link used) are grouped the same way: one query,
one thread hop, for all that arrive together."""
from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any


class GroupCommit:
    """`await submit(item)` → `many(items)[i]`, with `many` run on a thread for all items pending at once
    (`thread`: how it is run on one; `asyncio.to_thread` unless said)."""

    def __init__(self, many: Callable[[list[Any]], list[Any]], limit: int = 2000,
                 thread: Callable[..., Awaitable[Any]] = asyncio.to_thread) -> None:
        self.many = many
        self.limit = limit
        self.thread = thread
        self.pending: list[tuple[Any, asyncio.Future]] = []
        self.busy = False
        self.task: asyncio.Task | None = None  # the round in flight, kept (the loop holds tasks only weakly)

    def __len__(self) -> int:
        return len(self.pending)

    async def submit(self, item: Any) -> Any:
        fut: asyncio.Future = asyncio.get_running_loop().create_future()
        self.pending.append((item, fut))
        if not self.busy:
            self.busy = True
            self.task = asyncio.create_task(self._drain())
        return await fut

    async def _drain(self) -> None:
        try:
            while self.pending:
                batch, self.pending = self.pending[:self.limit], self.pending[self.limit:]
                try:
                    results = await self.thread(self.many, [i for i, _ in batch])
                except BaseException as exc:  # noqa: BLE001 - handed to every waiting caller
                    for _, fut in batch:
                        if not fut.done():
                            fut.set_exception(exc)
                    continue
                for (_, fut), result in zip(batch, results, strict=True):
                    if not fut.done():
                        fut.set_result(result)
        finally:
            self.busy = False
