"""Live call-out boards: one poll of the database per call-out, whoever watches it, and a limit per session.

A board's server-sent events carry what changed since the last tick (targets, the counts per
tier, the status). Each stream once polled the database itself every 0.5 s (three queries), also
for an id that did not exist: 300 streams of one session slowed every other request tenfold.
Now a `Broadcaster` runs one poller per call-out while at least one board watches it and hands
each tick to every watcher; a watcher that joins with an older cursor, or falls behind, catches
up with one query of its own. A console session may hold `MAX_PER_SESSION` streams at once
(429 beyond), and an unknown call-out is a 404 before any stream starts.

A writer of this process may tell the broadcaster which rows it has just committed (`nudge`: the
answers the API shows, api/services/answers/shown.py); those rows alone are read, beside the poll,
and handed out at once as a partial tick (rows, no counts or status), so that a duty officer sees
an answer when it is stored rather than up to a poll later.
"""
from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import structlog
from fastapi import HTTPException

log = structlog.get_logger(__name__)

MAX_PER_SESSION = 4
QUEUE = 16  # ticks a slow watcher may lag before it catches up by a query of its own
BUSY_ROWS = 1000
MAX_SLOWDOWN = 4
"""A poll that made 1,000 rows or fewer is followed by the next after the interval; one that made more, after as many
intervals as it made thousands of rows, up to 4: in a 100,000-person call-out every target changes several times
within seconds (sent, delivered, answered, acknowledged or escalated), and a board that made each change a row
every 0.5 s took the CPU its API needed for the answers (docs/performance.md, "The board at 100,000"). The
answers this process shows are sent at once all the same (`nudge`)."""


def _covers(made: frozenset | None, only: frozenset | None) -> bool:
    """Whether rows made for `made` (None: every row) hold every row `only` asks for (None: every row)."""
    return made is None or (only is not None and only <= made)


def slowdown(made: int) -> float:
    """How many intervals to wait after a poll that made `made` rows (`BUSY_ROWS`)."""
    return min(MAX_SLOWDOWN, max(1.0, made / BUSY_ROWS))


@dataclass
class Tick:
    rows: list[dict]
    newest: datetime
    counts: Any
    status: str | None
    partial: bool = False  # only rows the poller was told of (`Broadcaster.nudge`): no counts, no status, no cursor


Poll = Callable[[str, datetime, dict | None, frozenset | None], Awaitable[Tick]]
"""(key, since, sent, wanted): `sent` is the shared poll's memo of what it has handed out (the poll may leave out what
has not changed since), None for a watcher's own catch-up, which must be whole; `wanted`, the rows its watchers show
(None: every row)."""
Rows = Callable[[str, list[int], dict], Awaitable[list[dict]]]
_LAGGED = object()
_NO_CURSOR = datetime.min.replace(tzinfo=UTC)  # a partial tick moves no watcher's cursor


@dataclass
class _Feed:
    cursor: datetime
    since: datetime | None = None  # what the last shared poll asked from
    latest: Tick | None = None
    queues: set[asyncio.Queue] = field(default_factory=set)
    task: asyncio.Task | None = None
    teller: asyncio.Task | None = None  # reads and hands out the rows told of (`nudge`), beside the poll
    told: set[int] = field(default_factory=set)  # rows told of (`nudge`), not read yet
    sent: dict = field(default_factory=dict)  # the poll's memo of what it handed out (`Poll`); the poll's and the
    # teller's threads both write it, a key at a time (single dict operations, whole under the interpreter's lock)
    woken: asyncio.Event = field(default_factory=asyncio.Event)
    shows: dict[asyncio.Queue, frozenset | None] = field(default_factory=dict)  # each watcher's rows (None: all)
    made_for: frozenset | None = None  # the rows the last shared poll made (None: every row)

    def wanted(self) -> frozenset | None:
        """The rows any watcher shows; None when one of them takes every row."""
        shown = list(self.shows.values())
        return None if not shown or None in shown else frozenset().union(*shown)


class Broadcaster:
    """One poller per key (a call-out) while anyone watches it; `rows`, when given, reads the rows a writer of this
    process has told of (`nudge`) beside the poll, so they go out at once rather than at the next poll."""

    def __init__(self, poll: Poll, interval: float, rows: Rows | None = None):
        self.poll, self.interval, self.rows = poll, interval, rows
        self.feeds: dict[str, _Feed] = {}
        self.sessions: dict[str, int] = {}

    async def pause(self) -> None:
        """Between two polls of a call-out."""
        await asyncio.sleep(self.interval)

    async def _pause(self, made: int) -> None:
        """Before the next poll: the interval, or after a poll that made more than `BUSY_ROWS` rows as many intervals
        as it made thousands (at most `MAX_SLOWDOWN`): a row that changes again meanwhile is made once."""
        await self.pause()
        if (more := slowdown(made) - 1) > 0:
            await asyncio.sleep(self.interval * more)

    def nudge(self, told: list[tuple[str, int]]) -> None:
        """(key, row id) pairs just committed (api/services/answers/shown.py): read and sent to their keys' watchers
        at once, beside the poll (`_tell`); keys nobody watches are ignored."""
        wanted: dict[str, frozenset | None] = {}
        for key, row_id in told:
            feed = self.feeds.get(key)
            if feed is None or self.rows is None:
                continue
            if key not in wanted:
                wanted[key] = feed.wanted()
            if _covers(wanted[key], frozenset((row_id,))):  # (a row no watcher shows is not read)
                feed.told.add(row_id)
                feed.woken.set()

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

    async def watch(self, callout_id: str, cursor: datetime, only: frozenset | None = None) -> AsyncIterator[Tick]:
        """Every tick of the call-out from `cursor` on, as long as the caller iterates; `only`: the rows the watcher
        shows (a full page of the board), which are all the poll need make for it (other watchers' rows may come
        too)."""
        feed = self.feeds.get(callout_id)
        joining = feed is not None
        if feed is None:
            feed = self.feeds[callout_id] = _Feed(cursor=cursor)
        q: asyncio.Queue = asyncio.Queue(maxsize=QUEUE)
        mine = cursor
        if feed.latest is None and (not joining or _covers(feed.wanted(), only)):  # (wanted: before we join)
            feed.cursor = min(feed.cursor, cursor)  # nothing polled yet: the first poll covers us too
        elif (feed.latest is not None and feed.since is not None and cursor >= feed.since and not feed.sent
              and _covers(feed.made_for, only)):
            q.put_nowait(feed.latest)  # the last tick covers what we need: no query of our own
        else:  # older than the shared poll, or its poll was made for other rows, or left out what it had sent
            q.put_nowait(_LAGGED)  # catch up by a query of our own
        feed.queues.add(q)
        feed.shows[q] = only
        if feed.task is None:
            feed.task = asyncio.create_task(self._run(callout_id, feed))
            if self.rows is not None:
                feed.teller = asyncio.create_task(self._tell(callout_id, feed))
        try:
            while True:
                tick = await q.get()
                if tick is _LAGGED:
                    tick = await self.poll(callout_id, mine, None, only)
                mine = max(mine, tick.newest)
                yield tick
        finally:
            feed.queues.discard(q)
            feed.shows.pop(q, None)
            if not feed.queues and self.feeds.get(callout_id) is feed:
                del self.feeds[callout_id]
                for task in (feed.task, feed.teller):
                    if task is not None:
                        task.cancel()

    async def _run(self, callout_id: str, feed: _Feed) -> None:
        while feed.queues:
            since = feed.cursor
            try:
                wanted = feed.wanted()
                tick = await self.poll(callout_id, since, feed.sent, wanted)
            except Exception:  # noqa: BLE001 - a busy database: the next tick tries again
                log.warning("call-out board poll failed", callout_id=callout_id, exc_info=True)
                await self._pause(0)
                continue
            feed.cursor, feed.since, feed.latest, feed.made_for = max(feed.cursor, tick.newest), since, tick, wanted
            self._hand_out(feed, tick)
            await self._pause(len(tick.rows))

    async def _tell(self, callout_id: str, feed: _Feed) -> None:
        """The rows told of (`nudge`), read and handed out as they come, beside the poll: a poll making thousands of
        rows (a 100,000-person call-out) held them up by seconds when they waited for it. A row read here may reach
        a watcher after a newer one from the poll; the rows carry their stamps (`v`) and the stream sends none older
        than what it sent (api/services/board.py `fresh_rows`)."""
        while True:
            await feed.woken.wait()
            feed.woken.clear()
            told, feed.told = sorted(feed.told), set()
            if not told or self.rows is None:
                continue
            try:
                rows = await self.rows(callout_id, told, feed.sent)
            except Exception:  # noqa: BLE001 - the next poll reads them all the same
                log.warning("call-out board rows not read", callout_id=callout_id, exc_info=True)
                continue
            self._hand_out(feed, Tick(rows, _NO_CURSOR, None, None, partial=True))

    @staticmethod
    def _hand_out(feed: _Feed, tick: Tick) -> None:
        for q in list(feed.queues):
            try:
                q.put_nowait(tick)
            except asyncio.QueueFull:  # a slow watcher: drop its backlog, it catches up by a query
                while not q.empty():
                    q.get_nowait()
                q.put_nowait(_LAGGED)
