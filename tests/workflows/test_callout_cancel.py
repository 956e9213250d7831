"""A canceled call-out waits for its shards to stop without spinning its workflow task.

Found making the replay guard's histories (tests/workflows/histories/): every canceled call-out's
history had a failed workflow task, "[TMPRL1101] Potential deadlock detected". After a cancel the
parent's loop waited on `cancel_reason is not None`, already true, so it went round without
yielding until the shards had ended; Temporal's deadlock detector failed the task after 2 s and the
server retried it. The shards' "解除" messages are held here on a barrier, so the parent must wait
for them with its workflow task completed.
"""
from __future__ import annotations

import asyncio
import threading
import uuid

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHandle

from activities.gateways.simulator import SimulatorGateway
from store.db import session_scope
from tests.factories import small_district
from tests.helpers import poll
from tests.workflows.callout_helpers import ack, callout_input, outbox, start, terminate_callouts, wait_for
from worker import build_worker
from workflows.callout import WarningCalloutWorkflow


@pytest.fixture
def people(db_url):
    with session_scope() as s:
        return small_district(s)


@pytest.fixture
def held_cancel_notices(monkeypatch) -> threading.Event:
    """The simulator holds every "解除" (call-out lifted) message until the event is set."""
    release = threading.Event()
    send = SimulatorGateway.send

    async def held(self, msg):
        while "解除" in msg.body and not release.is_set():
            await asyncio.sleep(0.05)
        return await send(self, msg)

    monkeypatch.setattr(SimulatorGateway, "send", held)
    yield release
    release.set()


def stop_signaled_and_task_completed(kinds: list[str]) -> bool:
    """The history shows the stop signal sent to the shard, and a workflow task completed after it."""
    if "EXTERNAL_WORKFLOW_EXECUTION_SIGNALED" not in kinds:
        return False
    return "WORKFLOW_TASK_COMPLETED" in kinds[kinds.index("EXTERNAL_WORKFLOW_EXECUTION_SIGNALED"):]


async def event_kinds(h: WorkflowHandle) -> list[str]:
    return [EventType.Name(e.event_type).removeprefix("EVENT_TYPE_") for e in (await h.fetch_history()).events]


async def test_a_canceled_call_out_waits_for_its_shards_with_its_workflow_task_completed(env, db_url, people,
                                                                                         held_cancel_notices):
    tq = f"tq-{uuid.uuid4().hex[:8]}"
    async with build_worker(env.client, task_queue=tq):
        try:
            inp = callout_input()
            h = await start(env.client, tq, inp)
            resp = people["330110001001.resp"]
            await wait_for(lambda: [m for m in outbox(inp.callout_id, person_id=resp) if m.provider_id],
                           what="first SMS")
            await ack(env.client, inp.callout_id, resp, "link")  # someone reached: the shard tells them it is lifted
            await h.signal(WarningCalloutWorkflow.cancel, "CAP Cancel")

            # the shard is still sending its "解除" messages (held); the parent has sent the stop and waits
            kinds = await poll(lambda: event_kinds(h), stop_signaled_and_task_completed, timeout=30,
                               what="the parent's workflow task completed after the stop")  # anti-hang bound
            assert "WORKFLOW_TASK_FAILED" not in kinds
            desc = await h.describe()
            assert desc.status.name == "RUNNING"  # still waiting for the shard, which is held

            held_cancel_notices.set()
            result = await h.result()
            assert result.status == "canceled"
            history = await h.fetch_history()
            failed = [e.workflow_task_failed_event_attributes.failure.message
                      for e in history.events if e.HasField("workflow_task_failed_event_attributes")]
            assert failed == []
            assert any("解除" in m.body for m in outbox(inp.callout_id, person_id=resp))
        finally:
            held_cancel_notices.set()
            await terminate_callouts(env.client)
