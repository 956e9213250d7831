"""Every policy path of the call-out, on the time-skipping test server."""
from __future__ import annotations

import uuid

import pytest
from temporalio.worker import Worker

from definitions.schema.common import Level
from store.db import session_scope
from tests.factories import small_district
from tests.workflows.callout_helpers import ack, callout, callout_input, outbox, report, start, targets, wait_for
from worker import build_worker


@pytest.fixture
def people(db_url):
    with session_scope() as s:
        return small_district(s, missing_deputy=("330110001.deputy",))


@pytest.fixture
async def worker(time_env, db_url):
    tq = f"tq-{uuid.uuid4().hex[:8]}"
    w: Worker = build_worker(time_env.client, task_queue=tq)
    async with w:
        yield tq


async def test_ack_on_first_sms(time_env, worker, people):
    inp = callout_input()
    handle = await start(time_env.client, worker, inp)
    resp = people["330110001001.resp"]
    await wait_for(lambda: outbox(inp.callout_id, person_id=resp), what="first SMS")
    # every target got a first SMS (no voice in the first round by day)
    first = outbox(inp.callout_id)
    assert {m.channel for m in first} <= {"sms", "im"}
    await ack(time_env.client, inp.callout_id, resp, "sms")
    result = await handle.result()
    t = targets(inp.callout_id)
    assert t[resp].state == "acknowledged" and t[resp].ack_channel == "sms"
    assert not t[resp].escalated_to
    voice_to_resp = [m for m in outbox(inp.callout_id, person_id=resp) if m.channel == "voice"]
    assert voice_to_resp == []  # answered before the voice step
    assert result.status == "completed"
    assert result.summary["acknowledged"] >= 1
