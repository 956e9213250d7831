"""重新呼叫 from the board: the shard workflow sends once per request (a double click is one recall), records
it in the trail, and an answer to the recall acknowledges the target; refused for a settled target."""
from __future__ import annotations

import pytest

from api.services import board_actions
from definitions.loader import load_or_raise
from tests.workflows.callout_helpers import (
    DEFINITIONS,
    ack,
    callout_input,
    events,
    outbox,
    people,  # noqa: F401 - the shared fixtures
    start,
    targets,
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

    # a double click: the same request twice
    for _ in range(2):
        out = await board_actions.recall(env.client, lib, inp.callout_id, target.id, ["sms", "voice"],
                                         actor="admin:console", ref="click-1", note="再打一次")
        assert out["channels"] == ["sms", "voice"]
    await wait_for(lambda: events(inp.callout_id, "callout.recall"), what="the recall recorded")
    recalled = [m for m in outbox(inp.callout_id, person_id=resp) if "/recall-" in m.idempotency_key]
    await wait_for(lambda: len([m for m in outbox(inp.callout_id, person_id=resp)
                                if "/recall-" in m.idempotency_key]) == 2, what="two recall messages")
    recalled = [m for m in outbox(inp.callout_id, person_id=resp) if "/recall-" in m.idempotency_key]
    assert sorted(m.channel for m in recalled) == ["sms", "voice"]
    assert len(outbox(inp.callout_id, person_id=resp)) == before + 2
    [rec] = events(inp.callout_id, "callout.recall")
    assert rec.actor == "admin:console" and rec.payload["channels"] == ["sms", "voice"]
    assert rec.payload["note"] == "再打一次" and rec.payload["person_id"] == resp

    # a second, deliberate recall (a new request) sends again, on the channel asked
    await board_actions.recall(env.client, lib, inp.callout_id, target.id, ["voice"], actor="admin:console",
                               ref="click-2")
    await wait_for(lambda: len(events(inp.callout_id, "callout.recall")) == 2, what="the second recall")
    await wait_for(lambda: len(outbox(inp.callout_id, person_id=resp)) == before + 3, what="one more call")
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
