"""Live call-out boards: one poll of the database per call-out, whoever watches it, and a limit per session.

A board's server-sent events carry what changed since the last tick (targets, the counts per
tier, the status). Each stream once polled the database itself every 0.5 s (three queries), also
for an id that did not exist: 300 streams of one session slowed every other request tenfold.
Now a `Broadcaster` runs one poller per call-out while at least one board watches it and hands
each tick to every watcher; a watcher that joins with an older cursor, or falls behind, catches
up with one query of its own. A console session may hold `MAX_PER_SESSION` streams at once
(429 beyond), and an unknown call-out is a 404 before any stream starts.
"""
from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import structlog
from fastapi import HTTPException

log = structlog.get_logger(__name__)

MAX_PER_SESSION = 4
QUEUE = 16  # ticks a slow watcher may lag before it catches up by a query of its own


@dataclass
class Tick:
    rows: list[dict]
    newest: datetime
    counts: Any
    status: str | None


Poll = Callable[[str, datetime], Awaitable[Tick]]
_LAGGED = object()


@dataclass
class _Feed:
    cursor: datetime
    since: datetime | None = None  # what the last shared poll asked from
    latest: Tick | None = None
    queues: set[asyncio.Queue] = field(default_factory=set)
    task: asyncio.Task | None = None


class Broadcaster:
    def __init__(self, poll: Poll, interval: float):
        self.poll, self.interval = poll, interval
        self.feeds: dict[str, _Feed] = {}
        self.sessions: dict[str, int] = {}

    async def pause(self) -> None:
        """Between two polls of a call-out."""
        await asyncio.sleep(self.interval)

    # ------------------------------------------------------------ streams per session

    @staticmethod
    def session_key(secret: str) -> str:
        return hashlib.sha256(secret.encode()).hexdigest()[:24]

    def acquire(self, session: str) -> bool:
        if self.sessions.get(session, 0) >= MAX_PER_SESSION:
            return False
        self.sessions[session] = self.sessions.get(session, 0) + 1
        return True

    def release(self, session: str) -> None:
        left = self.sessions.get(session, 0) - 1
        if left > 0:
            self.sessions[session] = left
        else:
            self.sessions.pop(session, None)

    @contextmanager
    def held(self, secret: str, what_zh: str, what_en: str) -> Iterator[Broadcaster]:
        """One of the session's live streams for as long as it runs; 429 past MAX_PER_SESSION."""
        key = self.session_key(secret)
        if not self.acquire(key):
            raise HTTPException(429, detail=f"每个会话最多同时打开{MAX_PER_SESSION}个{what_zh} / at most "
                                            f"{MAX_PER_SESSION} {what_en} per session; close one",
                                headers={"Retry-After": "5"})
        try:
            yield self
        finally:
            self.release(key)

    # ------------------------------------------------------------ the shared poll

    async def watch(self, callout_id: str, cursor: datetime) -> AsyncIterator[Tick]:
        """Every tick of the call-out from `cursor` on, as long as the caller iterates."""
        feed = self.feeds.get(callout_id)
        if feed is None:
            feed = self.feeds[callout_id] = _Feed(cursor=cursor)
        q: asyncio.Queue = asyncio.Queue(maxsize=QUEUE)
        mine = cursor
        if feed.latest is None:
            feed.cursor = min(feed.cursor, cursor)  # nothing polled yet: the first poll covers us too
        elif feed.since is not None and cursor >= feed.since:
            q.put_nowait(feed.latest)  # the last tick covers what we need: no query of our own
        else:
            q.put_nowait(_LAGGED)  # older than the shared poll: catch up by one query
        feed.queues.add(q)
        if feed.task is None:
            feed.task = asyncio.create_task(self._run(callout_id, feed))
        try:
            while True:
                tick = await q.get()
                if tick is _LAGGED:
                    tick = await self.poll(callout_id, mine)
                mine = max(mine, tick.newest)
                yield tick
        finally:
            feed.queues.discard(q)
            if not feed.queues and self.feeds.get(callout_id) is feed:
                del self.feeds[callout_id]
                if feed.task is not None:
                    feed.task.cancel()

    async def _run(self, callout_id: str, feed: _Feed) -> None:
        while feed.queues:
            since = feed.cursor
            try:
                tick = await self.poll(callout_id, since)
            except Exception:  # noqa: BLE001 - a busy database: the next tick tries again
                log.warning("call-out board poll failed", callout_id=callout_id, exc_info=True)
                await self.pause()
                continue
            feed.cursor, feed.since, feed.latest = max(feed.cursor, tick.newest), since, tick
            for q in list(feed.queues):
                try:
                    q.put_nowait(tick)
                except asyncio.QueueFull:  # a slow watcher: drop its backlog, it catches up by a query
                    while not q.empty():
                        q.get_nowait()
                    q.put_nowait(_LAGGED)
            await self.pause()
