"""重新呼叫 from the board: an update of the shard workflow, answered only once the sends are recorded (with what
was sent), once per request (a double click is one recall, with one answer), recorded in the trail; an answer
to the recall acknowledges the target; refused for a settled target, and refused (nothing sent) when it reaches
a shard whose escalation has ended."""
from __future__ import annotations

import asyncio
import concurrent.futures
import uuid
from datetime import UTC, datetime

import pytest
from temporalio import activity
from temporalio.client import WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.worker import Worker

from activities import all_activities
from activities import callout as callout_activities
from api.services import board_actions
from definitions.loader import load_or_raise
from workflows import all_workflows
from workflows.callout import CalloutShardWorkflow, FlushBody, FlushRequest, StopRequest, shard_id
from workflows.escalation import Recall, RecallResult
from workflows.kit.names import Callout as CalloutNames
from tests.workflows.callout_helpers import (
    DEFINITIONS,
    ack,
    callout_input,
    events,
    outbox,
    people,  # noqa: F401 - the shared fixtures
    start,
    targets,
    terminate_callouts,
    wait_for,
    worker,  # noqa: F401
)


async def test_recall_sends_once_per_request_and_is_recorded(env, worker, people):
    lib = load_or_raise(DEFINITIONS)
    inp = callout_input()
    await start(env.client, worker, inp)
    resp, head = people["330110001001.resp"], people["330110001.head"]
    await wait_for(lambda: outbox(inp.callout_id, person_id=resp) and outbox(inp.callout_id, person_id=head),
                   what="first messages")
    target = targets(inp.callout_id)[resp]
    before = len(outbox(inp.callout_id, person_id=resp))

    # a double click: the same request twice at once, and once more by another path (the same ref)
    outs = await asyncio.gather(*[
        board_actions.recall(env.client, lib, inp.callout_id, target.id, ["sms", "voice"], actor="admin:console",
                             ref="click-1", note="再打一次") for _ in range(2)])
    again = await env.client.get_workflow_handle(shard_id(inp.callout_id, target.shard)).execute_update(
        CalloutShardWorkflow.recall, Recall(target_key=target.target_key, channels=["sms"], actor="admin:console",
                                            ref="click-1", at=datetime.now(UTC)),
        id="another-update-id", result_type=RecallResult)
    # answered only once sent and recorded: no waiting here
    out = outs[0]
    assert outs[1] == out and sorted(out["channels"]) == ["sms", "voice"] and not out["missing"] + out["failed"]
    assert again.keys == out["keys"]  # the first request's answer
    recalled = [m for m in outbox(inp.callout_id, person_id=resp) if "/recall-" in m.idempotency_key]
    assert sorted(m.idempotency_key for m in recalled) == sorted(out["keys"])
    assert sorted(m.channel for m in recalled) == ["sms", "voice"]
    assert len(outbox(inp.callout_id, person_id=resp)) == before + 2
    [rec] = events(inp.callout_id, "callout.recall")
    assert rec.actor == "admin:console" and rec.payload["channels"] == ["sms", "voice"]
    assert rec.payload["note"] == "再打一次" and rec.payload["person_id"] == resp

    # a second, deliberate recall (a new request) sends again, on the channel asked
    second = await board_actions.recall(env.client, lib, inp.callout_id, target.id, ["voice"],
                                        actor="admin:console", ref="click-2")
    assert second["channels"] == ["voice"] and len(second["keys"]) == 1
    assert len(events(inp.callout_id, "callout.recall")) == 2
    assert len(outbox(inp.callout_id, person_id=resp)) == before + 3  # and no more

    # the board row counts the recall among the attempts; an answer acknowledges the target
    row = targets(inp.callout_id)[resp]
    assert sum(1 for a in row.attempts if a.get("purpose") == "notify") >= 4
    await ack(env.client, inp.callout_id, resp, "sms")
    await wait_for(lambda: targets(inp.callout_id)[resp].state == "acknowledged", what="acknowledged")
    with pytest.raises(board_actions.BoardActionError) as refused:
        await board_actions.recall(env.client, lib, inp.callout_id, target.id, ["sms"], actor="admin:console",
                                   ref="click-3")
    assert refused.value.status == 409 and "已应答" in str(refused.value)
    # the workflow refuses too (the store may lag behind it), and refuses a malformed request early
    handle = env.client.get_workflow_handle(shard_id(inp.callout_id, target.shard))
    for channels, kind in ((["sms"], "RecallSettled"), (["fax"], "RecallInvalid")):
        with pytest.raises(WorkflowUpdateFailedError) as failed:
            await handle.execute_update(CalloutShardWorkflow.recall, Recall(
                target_key=target.target_key, channels=channels, actor="a", ref=kind, at=datetime.now(UTC)))
        assert isinstance(failed.value.cause, ApplicationError) and failed.value.cause.type == kind
    assert len(events(inp.callout_id, "callout.recall")) == 2


async def test_recall_reaching_an_ended_shard_is_refused_and_sends_nothing(env, db_url, people):
    """A recall that reaches the shard after its escalation ended (stopped: the last flush, telling the persons
    reached, is held at a barrier) is refused with the message, and nothing is sent or recorded for it."""
    held, release = asyncio.Event(), asyncio.Event()

    @activity.defn(name=CalloutNames.FLUSH)
    async def flush(req: FlushRequest):
        body = FlushBody.unpack(req.packed) if req.packed else FlushBody(refs=[], records=req.records)
        if any(ref.purpose == "cancel" for ref in body.refs):  # the shard's last batch
            held.set()
            await release.wait()
        return await callout_activities.flush(req)

    tq = f"tq-{uuid.uuid4().hex[:8]}"
    activities = [a for a in all_activities() if a is not callout_activities.flush] + [flush]
    async with Worker(env.client, task_queue=tq, workflows=all_workflows(), activities=activities,
                      activity_executor=concurrent.futures.ThreadPoolExecutor(max_workers=8)):
        lib = load_or_raise(DEFINITIONS)
        inp = callout_input()
        await start(env.client, tq, inp)
        resp = people["330110001001.resp"]
        await wait_for(lambda: outbox(inp.callout_id, person_id=resp), what="first messages")
        target = targets(inp.callout_id)[resp]
        shard = env.client.get_workflow_handle(shard_id(inp.callout_id, target.shard))
        await shard.signal(CalloutShardWorkflow.stop, StopRequest(reason="test"))
        await held.wait()  # the escalation has ended; its last batch is being written
        try:
            with pytest.raises(board_actions.BoardActionError) as refused:
                await board_actions.recall(env.client, lib, inp.callout_id, target.id, ["sms"], actor="a", ref="late")
        finally:
            release.set()
        assert refused.value.status == 409 and "该部分叫应已结束,请电话联系并代为确认" in str(refused.value)
        await shard.result()  # ends: no update left unfinished
        assert not [m for m in outbox(inp.callout_id) if "/recall-" in m.idempotency_key]
        assert not events(inp.callout_id, "callout.recall")
        await terminate_callouts(env.client)


async def test_recall_refuses_a_channel_outside_the_policy(env, worker, people):
    lib = load_or_raise(DEFINITIONS)
    inp = callout_input()
    await start(env.client, worker, inp)
    resp = people["330110001001.resp"]
    await wait_for(lambda: outbox(inp.callout_id, person_id=resp), what="first SMS")
    target = targets(inp.callout_id)[resp]
    with pytest.raises(board_actions.BoardActionError) as refused:
        await board_actions.recall(env.client, lib, inp.callout_id, target.id, ["fax"], actor="a", ref="x")
    assert refused.value.status == 422 and "渠道" in str(refused.value)
    with pytest.raises(board_actions.BoardActionError) as missing:
        await board_actions.recall(env.client, lib, inp.callout_id, 10**9, ["sms"], actor="a", ref="y")
    assert missing.value.status == 404


async def test_bulk_confirm_acknowledges_each_with_the_note(env, worker, people):
    inp = callout_input()
    await start(env.client, worker, inp)
    resp, head = people["330110001001.resp"], people["330110001.head"]
    await wait_for(lambda: outbox(inp.callout_id, person_id=resp) and outbox(inp.callout_id, person_id=head),
                   what="first messages")
    rows = targets(inp.callout_id)
    await ack(env.client, inp.callout_id, head, "sms")
    await wait_for(lambda: targets(inp.callout_id)[head].state == "acknowledged", what="the head answered")
    out = await board_actions.confirm_many(env.client, inp.callout_id, [rows[resp].id, rows[head].id, rows[resp].id],
                                           "已逐一电话确认", "admin:console")
    assert out["confirmed"] == [rows[resp].name] and out["skipped"] == [rows[head].name] and not out["failed"]
    await wait_for(lambda: targets(inp.callout_id)[resp].state == "acknowledged", what="confirmed on their behalf")
    t = targets(inp.callout_id)[resp]
    assert t.ack_channel == "proxy" and t.ack_by == resp
    [rec] = [e for e in events(inp.callout_id, "callout.ack") if e.payload["person_id"] == resp]
    assert rec.actor == "admin:console" and rec.payload["note"] == "已逐一电话确认"

    with pytest.raises(board_actions.BoardActionError) as empty:
        await board_actions.confirm_many(env.client, inp.callout_id, [], "x", "a")
    assert empty.value.status == 422
    with pytest.raises(board_actions.BoardActionError) as foreign:
        await board_actions.confirm_many(env.client, inp.callout_id, [10**9], "x", "a")
    assert foreign.value.status == 422
