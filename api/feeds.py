"""Polling of CAP sources (APScheduler), and the periodic audit anchor.

Exactly one poller runs per deployment: the process that holds the scheduler lock
(a PostgreSQL advisory lock, or a file lock in DATA_DIR for SQLite) runs the jobs;
the others stand by and try again.
"""
from __future__ import annotations

import asyncio
import fcntl
import os
import threading
from pathlib import Path
from urllib.parse import urljoin

import feedparser
import httpx
import structlog
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlalchemy import create_engine, text
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.pool import NullPool

from api.cap import MAX_CAP_BYTES, CapError
from api.services.warnings import IntakeError, from_cap, intake
from config import Settings
from definitions.loader import cached_library
from store.audit import write_anchor
from store.db import session_scope

log = structlog.get_logger("yingji.feeds")
LOCK_KEY = 0x79696E676A69  # "yingji"


class SchedulerLock:
    """Held by one process of the deployment.

    PostgreSQL: a session advisory lock on a connection of its own (not from the pool, in
    autocommit: never "idle in transaction"), checked again before every job. When that
    connection dies (the server restarted, a failover, `pg_terminate_backend`) the lock is gone
    with it and another process may hold it now: the next check opens a new connection and
    tries again, and stands down if someone else has it. SQLite: a file lock in DATA_DIR.
    Blocking calls: run `acquire` in a thread from async code.
    """

    APPLICATION_NAME = "yingji-scheduler-lock"

    def __init__(self, settings: Settings):
        self.settings = settings
        self._file = None
        self._conn = None
        self._engine = None
        self._mutex = threading.Lock()  # the poll and anchor jobs may ask at once, from two threads

    def acquire(self) -> bool:
        """True when this process holds the lock now (checked against the database each time)."""
        with self._mutex:
            return self._acquire()

    def _acquire(self) -> bool:
        url = self.settings.database
        if url.startswith("sqlite"):
            return self._acquire_file()
        if self._conn is not None:
            try:
                if self._conn.execute(_HELD, {"k": LOCK_KEY}).scalar():
                    return True
                log.warning("scheduler lock no longer held; trying again")
            except DBAPIError as exc:
                log.warning("scheduler lock connection lost; trying again", error=str(exc.orig or exc)[:200])
            self._close()
        try:
            conn = self._dedicated_engine(url).connect().execution_options(isolation_level="AUTOCOMMIT")
        except DBAPIError as exc:
            log.warning("scheduler lock: database unreachable", error=str(exc.orig or exc)[:200])
            return False
        try:
            if conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": LOCK_KEY}).scalar():
                self._conn = conn
                return True
        except DBAPIError:
            pass
        conn.close()
        return False

    def _dedicated_engine(self, url: str):
        if self._engine is None:
            self._engine = create_engine(url, poolclass=NullPool, connect_args={
                "application_name": self.APPLICATION_NAME, "connect_timeout": 10,
                # a peer that vanished without a word (a failover) is noticed within a minute
                "keepalives": 1, "keepalives_idle": 30, "keepalives_interval": 10, "keepalives_count": 3})
        return self._engine

    def _acquire_file(self) -> bool:
        if self._file:
            return True
        self.settings.data_dir.mkdir(parents=True, exist_ok=True)
        f = open(Path(self.settings.data_dir) / "scheduler.lock", "w")  # noqa: SIM115 - held while we run
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            f.close()
            return False
        f.write(str(os.getpid()))
        f.flush()
        self._file = f
        return True

    def _close(self) -> None:
        if self._conn is not None:
            try:
                # unlock first: a closed connection's backend drops its locks only when it exits, a moment
                # later, and the other process's next ask would find the lock still taken
                self._conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": LOCK_KEY})
            except SQLAlchemyError:
                pass  # the connection is gone (or broken), and its lock with it
            try:
                self._conn.close()
            except DBAPIError:
                pass
            self._conn = None

    def release(self) -> None:
        with self._mutex:
            self._release()

    def _release(self) -> None:
        if self._file:
            self._file.close()
            self._file = None
        self._close()
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None


# is the advisory lock (a bigint key: classid = high 32 bits, objid = low, objsubid 1) held by this session?
_HELD = text("SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid() "
             "AND granted AND objsubid = 1 AND ((classid::bigint << 32) | objid::bigint) = :k)")


async def fetch_cap_documents(client: httpx.AsyncClient, url: str) -> list[tuple[str, bytes]]:
    """The CAP documents at a source: the document itself, or every entry of an Atom/RSS feed."""
    body = await _get(client, url)
    head = body[:2000].lstrip()
    if b"urn:oasis:names:tc:emergency:cap:1.2" in head or b"<alert" in head:
        return [(url, body)]
    feed = feedparser.parse(body)
    docs = []
    for entry in feed.entries:
        links = [lnk.get("href") for lnk in entry.get("links", []) if lnk.get("href")]
        cap_links = [h for lnk, h in zip(entry.get("links", []), links) if "cap" in (lnk.get("type") or "")] or links[:1]
        for href in cap_links:
            full = urljoin(url, href)
            try:
                docs.append((full, await _get(client, full)))
            except httpx.HTTPError as exc:
                log.warning("feed entry unreachable", url=full, error=str(exc))
    return docs


async def _get(client: httpx.AsyncClient, url: str) -> bytes:
    async with client.stream("GET", url, timeout=15) as resp:
        resp.raise_for_status()
        data = b""
        async for chunk in resp.aiter_bytes():
            data += chunk
            if len(data) > MAX_CAP_BYTES:
                raise httpx.HTTPError(f"{url}: larger than {MAX_CAP_BYTES} bytes")
        return data


async def poll_once(settings: Settings, temporal) -> dict[str, int]:
    """One pass over every configured source, through the same intake as the API."""
    counts = {"documents": 0, "new": 0, "refused": 0}
    # reading and validating every definition file takes most of a second: not on the event loop, where
    # it held up every request and made the audit anchor miss its turn
    lib = await asyncio.to_thread(cached_library, settings.definitions_dir)
    async with httpx.AsyncClient(follow_redirects=True) as http:
        for source in settings.cap_feeds:
            try:
                docs = await fetch_cap_documents(http, source)
            except httpx.HTTPError as exc:
                log.warning("CAP source unreachable", source=source, error=str(exc))
                continue
            for url, body in docs:
                counts["documents"] += 1
                try:
                    warning = from_cap(body)
                    client = await temporal()
                    result = await intake(client, settings, lib, warning, source=f"feed:{source}", actor="feed")
                    counts["new"] += 0 if result.duplicate else 1
                except (CapError, IntakeError) as exc:
                    counts["refused"] += 1
                    log.warning("CAP document refused", url=url, error=str(exc))
    return counts


def anchor_now() -> None:
    with session_scope() as s:
        write_anchor(s)


def prune_short_links(settings: Settings) -> int:
    """The texts' short link aliases (store/links.py) outlive no link they lead to: forgotten a day after the
    longest a link lives (the contact confirmation link's `link_valid`, the 六问 form's 8 days, the others' 2)."""
    from datetime import UTC, datetime, timedelta

    from api.routes.duty.links import FORM_MAX_AGE
    from definitions.loader import cached_library
    from store.links import prune_short

    duty = cached_library(settings.definitions_dir).duty()
    confirm = duty.freshness.link_valid if duty else timedelta(days=60)
    longest = max(confirm, timedelta(seconds=FORM_MAX_AGE), timedelta(days=2))
    with session_scope() as s:
        return prune_short(s, datetime.now(UTC) - longest - timedelta(days=1))


def start_scheduler(settings: Settings, temporal) -> AsyncIOScheduler:
    """The CAP poll, the audit anchor, the hourly housekeeping (and DingTalk's read status), run by the process that holds the scheduler lock.

    A run that comes late (the event loop or the machine busy) still runs: APScheduler's default
    misfire grace of 1 s skipped the anchor whenever the poll held the loop, one anchor in 16
    minutes. Runs that piled up coalesce into one; a job never overlaps itself."""
    lock = SchedulerLock(settings)
    scheduler = AsyncIOScheduler(job_defaults={"misfire_grace_time": None, "coalesce": True, "max_instances": 1})

    async def leader(job):
        if await asyncio.to_thread(lock.acquire):
            await job()

    async def poll_job():
        if settings.cap_feeds:
            await poll_once(settings, temporal)

    async def anchor_job():
        await asyncio.to_thread(anchor_now)

    scheduler.add_job(leader, "interval", args=[poll_job], seconds=settings.cap_poll_interval_s, id="cap-poll")
    async def housekeeping_job():
        await asyncio.to_thread(prune_short_links, settings)

    scheduler.add_job(leader, "interval", args=[anchor_job], seconds=settings.audit_anchor_interval_s,
                      id="audit-anchor")
    scheduler.add_job(leader, "interval", args=[housekeeping_job], hours=1, id="housekeeping")
    if settings.im_gateway == "dingtalk":  # 已读 of the work notifications (api/services/dingtalk_reads.py)
        async def dingtalk_read_job():
            from api.services.dingtalk_reads import poll_read_status

            client = await temporal()
            if client is not None:
                await poll_read_status(client)

        scheduler.add_job(leader, "interval", args=[dingtalk_read_job], seconds=settings.dingtalk_read_poll_s,
                          id="dingtalk-read")
    scheduler.start()
    scheduler.lock = lock  # type: ignore[attr-defined]
    return scheduler
