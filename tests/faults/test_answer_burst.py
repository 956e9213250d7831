"""A burst of SMS replies arriving together is stored together (one commit for the batch) and
each reply is still handled as if it came alone: stored once, matched to its call-out,
duplicates and strangers recognised, every acknowledgement delivered."""
from __future__ import annotations

import asyncio
import uuid
from collections import Counter

import pytest
from sqlmodel import select

from api.services.answers import sms_reply
from store.callouts import CalloutTarget
from store.db import session_scope
from store.messages import InboundMessage, OutboxMessage
from tests.helpers import CAP, poll


@pytest.fixture
async def running(module_time_env, db_url, monkeypatch):
    import httpx

    from api.app import create_app
    from config import get_settings
    from tests.factories import small_district
    from tests.workflows.callout_helpers import terminate_callouts
    from worker import build_worker

    monkeypatch.setenv("YINGJI_RUN_SCHEDULER", "false")
    monkeypatch.setenv("YINGJI_ADMIN_TOKEN", "burst-admin")
    monkeypatch.setenv("YINGJI_TASK_QUEUE", f"burst-{uuid.uuid4().hex[:6]}")
    get_settings.cache_clear()
    with session_scope() as s:
        small_district(s)
    app = create_app(temporal_client=module_time_env.client)
    async with build_worker(module_time_env.client, task_queue=get_settings().task_queue), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://t",
            headers={"Authorization": "Bearer burst-admin"}) as http:
        r = await http.post("/api/warnings", content=CAP.format(ident=f"burst-{uuid.uuid4().hex[:6]}"),
                            headers={"content-type": "application/cap+xml"})
        cid = r.json()["callout_id"]

        def notified():
            with session_scope(write=False) as s:
                return list(s.exec(select(OutboxMessage).where(OutboxMessage.subject == cid,
                                                               OutboxMessage.status == "sent")))

        rows = await poll(lambda: asyncio.sleep(0, notified()), lambda r: len(r) >= 11, what="the first notifications")
        yield module_time_env.client, cid, rows
        await terminate_callouts(module_time_env.client)


async def test_a_burst_of_replies_is_stored_once_each_and_acknowledges_everyone(running):
    client, cid, rows = running
    people = {m.person_id: m.to for m in rows if m.channel == "sms"}
    burst = [(to, "收到", f"SMb{pid}") for pid, to in people.items()]
    burst += [(to, "1", f"SMb{pid}") for pid, to in list(people.items())[:5]]  # the same messages again
    burst += [(f"+8617{n:09d}", "1", f"SMstranger{n}") for n in range(5)]  # numbers nobody called
    burst += [(to, "我在开会", f"SMtalk{pid}") for pid, to in list(people.items())[:3]]  # not an answer
    answers = await asyncio.gather(*(sms_reply(client, "twilio", to, body, provider_id=sid) for to, body, sid in burst))
    handled = Counter(a["handled"] for a in answers)
    assert handled == {"ack": len(people), "duplicate": 5, "unmatched": 5, "not an acknowledgement": 3}, handled
    with session_scope(write=False) as s:
        stored = Counter(m.provider_id for m in s.exec(select(InboundMessage)))
    assert len(stored) == len(people) + 8 and max(stored.values()) == 1

    async def states():
        with session_scope(write=False) as s:
            return {t.person_id: t.state for t in s.exec(select(CalloutTarget).where(CalloutTarget.callout_id == cid))}

    got = await poll(states, lambda st: all(st[p] == "acknowledged" for p in people if p in st), what="every answer")
    assert {p for p, st in got.items() if st == "acknowledged"} >= set(people) & set(got)
