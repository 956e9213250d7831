"""The answer window counts from the moment the gateway accepted the message (issue 15, finding 2).

On the dev server with the real worker and activities, the simulator gateway takes 20 s to accept
each message (as a loaded gateway or rate limit would). Each person must still get the whole wait
after their message left before their deputy is called: the deputy's outbox row (written when the
workflow decides to escalate) comes no earlier than the person's acceptance time plus the wait.
Before the fix the wait started when the workflow decided to send: the 5 s wait had run out
while the message was still at the gateway, and the deputy was called the moment it left.
"""
from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from activities.gateways import reset_gateways
from config import get_settings
from definitions.schema.escalation import Policy
from store.db import session_scope
from tests.factories import small_district
from tests.workflows.callout_helpers import callout_input, outbox, start, wait_for
from worker import build_worker

LATENCY_S, WAIT = 20, timedelta(seconds=5)


@pytest.fixture
def slow_gateway(db_url, monkeypatch):
    monkeypatch.setenv("YINGJI_SIMULATOR_LATENCY_MS", str(LATENCY_S * 1000))
    get_settings.cache_clear()
    reset_gateways()
    yield
    reset_gateways()


async def test_a_send_delayed_20s_still_gets_its_whole_wait(dev_env, db_url, slow_gateway):
    with session_scope() as s:
        people = small_district(s, towns=1, villages=1)
    steps = Policy.model_validate({"steps": [{"notify": ["sms"]}, {"wait_ack": "5s"}, {"escalate": "deputy"},
                                             {"wait_ack": "5s"}]})
    inp = callout_input()
    inp = inp.model_copy(update={"plan": inp.plan.model_copy(update={"policies": {k: steps for k in inp.plan.policies}})})
    resp, deputy = people["330110001001.resp"], people["330110001001.head"]
    tq = f"timing-{uuid.uuid4().hex[:8]}"
    async with build_worker(dev_env.client, task_queue=tq):
        handle = await start(dev_env.client, tq, inp)
        try:
            # anti-hang bound (10x the expected ~30 s)
            first = await wait_for(lambda: [m for m in outbox(inp.callout_id, person_id=resp) if m.sent_at],
                                   timeout=300, what="the person's SMS accepted")
            escalated = await wait_for(lambda: [m for m in outbox(inp.callout_id, person_id=deputy)
                                                if (m.meta or {}).get("purpose") == "escalate"],
                                       timeout=300, what="the deputy called")
        finally:
            await handle.terminate("test over")
    accepted = first[0].sent_at
    assert accepted - first[0].created_at >= timedelta(seconds=LATENCY_S - 1)  # the gateway held it
    assert escalated[0].created_at >= accepted + WAIT, (
        f"the deputy was called {(escalated[0].created_at - accepted).total_seconds():.1f} s after the person's "
        f"message left; the wait is {WAIT.total_seconds():.0f} s")
