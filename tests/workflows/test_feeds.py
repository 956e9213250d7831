"""The CAP feed poller: an Atom feed of CAP entries through the same intake, exactly one poller."""
from __future__ import annotations

import threading
import uuid
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from sqlmodel import select

from api.feeds import SchedulerLock, poll_once
from config import get_settings
from store.db import session_scope
from store.warnings import Warning
from tests.factories import small_district
from tests.helpers import CAP
from tests.workflows.callout_helpers import terminate_callouts
from worker import build_worker

ATOM = """<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom">
  <title>青溪区预警信息</title><id>urn:feed:qingxi</id><updated>2026-07-01T03:10:00+08:00</updated>
  <entry><title>暴雨橙色预警</title><id>urn:a</id><updated>2026-07-01T03:10:00+08:00</updated>
    <link rel="alternate" type="application/cap+xml" href="alerts/a.xml"/></entry>
  <entry><title>暴雨蓝色预警</title><id>urn:b</id><updated>2026-07-01T02:10:00+08:00</updated>
    <link rel="alternate" type="application/cap+xml" href="alerts/b.xml"/></entry>
</feed>"""


@pytest.fixture
def feed_server(tmp_path: Path):
    (tmp_path / "alerts").mkdir()
    ids = [f"feed-{uuid.uuid4().hex[:6]}" for _ in range(2)]
    (tmp_path / "alerts" / "a.xml").write_text(CAP.format(ident=ids[0]))
    (tmp_path / "alerts" / "b.xml").write_text(CAP.format(ident=ids[1]).replace("橙色", "蓝色"))
    (tmp_path / "feed.xml").write_text(ATOM)
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(SimpleHTTPRequestHandler, directory=str(tmp_path)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}", ids
    server.shutdown()


async def test_feed_entries_go_through_intake_once(module_time_env, db_url, feed_server, monkeypatch):
    base, ids = feed_server
    with session_scope() as s:
        small_district(s)
    monkeypatch.setenv("YINGJI_CAP_FEEDS", f'["{base}/feed.xml", "{base}/alerts/a.xml"]')
    get_settings.cache_clear()
    settings = get_settings()
    settings.task_queue = f"feeds-{uuid.uuid4().hex[:6]}"

    async def temporal():
        return module_time_env.client

    async with build_worker(module_time_env.client, task_queue=settings.task_queue):
        first = await poll_once(settings, temporal)
        again = await poll_once(settings, temporal)
        await terminate_callouts(module_time_env.client)
    assert first == {"documents": 3, "new": 2, "refused": 0}  # a.xml twice (feed and direct): once new
    assert again["new"] == 0
    with session_scope(write=False) as s:
        rows = {w.identifier: w for w in s.exec(select(Warning))}
    assert rows[ids[0]].level == "orange" and rows[ids[0]].callout_id and rows[ids[0]].source.startswith("feed:")
    assert rows[ids[1]].level == "blue" and rows[ids[1]].callout_id is None


def test_exactly_one_poller_per_deployment(db_url):
    settings = get_settings()
    first, second = SchedulerLock(settings), SchedulerLock(settings)
    assert first.acquire() and not second.acquire()
    first.release()
    assert second.acquire()
    second.release()


EMPTY_FEED = """<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom"><title>青溪区预警信息</title><id>urn:feed:empty</id>
<updated>2026-07-01T03:10:00+08:00</updated></feed>"""


async def test_anchors_keep_their_interval_while_feeds_poll(db_url, tmp_path, monkeypatch):
    """Issue 15, finding 5: the poll and the anchor fire together; reading the definitions took the event
    loop for most of a second and APScheduler's 1 s misfire grace skipped the anchor. Here the library
    takes 2.5 s to load (a big library on a busy machine, made certain): anchors still come every interval."""
    import asyncio
    import time

    from apscheduler.events import EVENT_JOB_MISSED

    import api.feeds
    from api.feeds import start_scheduler
    from store.audit import ANCHOR_SUBJECT, AuditEvent, NewEvent, append, verify

    (tmp_path / "feed.xml").write_text(EMPTY_FEED)
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(SimpleHTTPRequestHandler, directory=str(tmp_path)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    real_load = api.feeds.cached_library

    def slow_load(*a, **kw):
        lib = real_load(*a, **kw)
        time.sleep(2.5)
        return lib

    monkeypatch.setattr(api.feeds, "cached_library", slow_load)
    monkeypatch.setenv("YINGJI_CAP_FEEDS", f'["http://127.0.0.1:{server.server_port}/feed.xml"]')
    monkeypatch.setenv("YINGJI_CAP_POLL_INTERVAL_S", "1")
    monkeypatch.setenv("YINGJI_AUDIT_ANCHOR_INTERVAL_S", "1")
    get_settings.cache_clear()

    stop = threading.Event()

    def activity() -> None:  # a chain that grows, so that every anchor has heads to record
        n = 0
        while not stop.is_set():
            n += 1
            with session_scope() as s:
                append(s, [NewEvent(subject="anchor-test", kind="callout.sent", step_id=f"tick-{n}")])
            stop.wait(0.2)

    writer = threading.Thread(target=activity, daemon=True)
    writer.start()
    missed: list[str] = []
    scheduler = start_scheduler(get_settings(), temporal=None)
    scheduler.add_listener(lambda ev: missed.append(ev.job_id), EVENT_JOB_MISSED)
    intervals = 10
    try:
        await asyncio.sleep(intervals)
    finally:
        scheduler.shutdown(wait=False)
        scheduler.lock.release()
        stop.set()
        writer.join(10)
        server.shutdown()
    with session_scope(write=False) as s:
        anchors = len(list(s.exec(select(AuditEvent).where(AuditEvent.subject == ANCHOR_SUBJECT))))
        assert verify(s).ok
    assert "audit-anchor" not in missed, f"anchor runs skipped: {missed.count('audit-anchor')}"
    # one per interval is 10; half of that is a generous bound for a busy machine (before the fix: 0-3)
    assert anchors >= intervals // 2, f"{anchors} anchors in {intervals} intervals of 1 s (skipped: {missed})"
