"""Polling of CAP sources (APScheduler), and the periodic audit anchor.

Exactly one poller runs per deployment: the process that holds the scheduler lock
(a PostgreSQL advisory lock, or a file lock in DATA_DIR for SQLite) runs the jobs;
the others stand by and try again.
"""
from __future__ import annotations

import asyncio
import fcntl
import os
from pathlib import Path
from urllib.parse import urljoin

import feedparser
import httpx
import structlog
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlalchemy import text

from api.cap import MAX_CAP_BYTES, CapError
from api.services.warnings import IntakeError, from_cap, intake
from config import Settings
from definitions.loader import load_library
from store.audit import write_anchor
from store.db import get_engine, session_scope

log = structlog.get_logger("yingji.feeds")
LOCK_KEY = 0x79696E676A69  # "yingji"


class SchedulerLock:
    """Held by one process of the deployment."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self._file = None
        self._conn = None

    def acquire(self) -> bool:
        if self._file or self._conn:
            return True
        url = self.settings.database
        if url.startswith("sqlite"):
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
        conn = get_engine().connect()
        if conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": LOCK_KEY}).scalar():
            self._conn = conn
            return True
        conn.close()
        return False

    def release(self) -> None:
        if self._file:
            self._file.close()
            self._file = None
        if self._conn:
            self._conn.close()
            self._conn = None


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
    lib = load_library(settings.definitions_dir)
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


def start_scheduler(settings: Settings, temporal) -> AsyncIOScheduler:
    lock = SchedulerLock(settings)
    scheduler = AsyncIOScheduler()

    async def leader(job):
        if lock.acquire():
            await job()

    async def poll_job():
        if settings.cap_feeds:
            await poll_once(settings, temporal)

    async def anchor_job():
        await asyncio.to_thread(anchor_now)

    scheduler.add_job(leader, "interval", args=[poll_job], seconds=settings.cap_poll_interval_s, id="cap-poll",
                      max_instances=1, coalesce=True)
    scheduler.add_job(leader, "interval", args=[anchor_job], seconds=60, id="audit-anchor", max_instances=1, coalesce=True)
    scheduler.start()
    scheduler.lock = lock  # type: ignore[attr-defined]
    return scheduler
