"""A cancelled call-out ends though its workflow tasks are slow (issue 15, finding 8).

A loaded machine made a shard's workflow task take over 2 s; the SDK's deadlock check failed it
(TMPRL1101), the workflow was evicted and replayed from its whole history, which took longer
still, and failed again: the call-out stayed 进行中 until a restart. Here the slowdown is injected:
every time a shard applies the cancel, its workflow thread is held 3 s (as a starved CPU would),
replays included. The call-out must still end `canceled`, shards included, on its own.
"""
from __future__ import annotations

import asyncio
import time
import uuid

import pytest

from store.db import session_scope
from tests.factories import small_district
from tests.workflows.callout_helpers import callout_input, outbox, start, wait_for
from worker import build_worker
from workflows.escalation import Escalation

SLOW_S = 3.0


@pytest.fixture
def slow_cancel(monkeypatch):
    """Escalation.cancel holds its thread SLOW_S seconds (the module is passed through the sandbox)."""
    original = Escalation.cancel
    calls = []

    def slow(self, *args, **kwargs):
        calls.append(time.monotonic())
        time.sleep(SLOW_S)  # no yield: what the deadlock check sees of a starved task
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Escalation, "cancel", slow)
    return calls


async def test_a_cancel_ends_the_callout_though_its_workflow_task_takes_3s(dev_env, db_url, slow_cancel):
    with session_scope() as s:
        people = small_district(s, towns=1, villages=1)
    inp = callout_input()
    tq = f"starved-{uuid.uuid4().hex[:8]}"
    async with build_worker(dev_env.client, task_queue=tq):
        handle = await start(dev_env.client, tq, inp)
        try:
            await wait_for(lambda: outbox(inp.callout_id, person_id=people["330110001001.resp"]), timeout=120,
                           what="the first SMS")
            await handle.signal("cancel", "CAP Cancel test")
            result = await asyncio.wait_for(handle.result(), timeout=120)  # anti-hang bound (~10x)
        except BaseException:
            await handle.terminate("test over")
            raise
    assert result.status == "canceled"
    shard = await dev_env.client.get_workflow_handle(f"{inp.callout_id}/shard-0").describe()
    assert shard.status.name == "COMPLETED"
    cancels = [m for m in outbox(inp.callout_id) if (m.meta or {}).get("purpose") == "cancel"]
    assert cancels, "nobody was told of the cancel"
    assert slow_cancel, "the slowdown was not injected"
