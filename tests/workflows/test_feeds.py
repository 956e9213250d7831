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
