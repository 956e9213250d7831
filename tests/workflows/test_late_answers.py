"""Every answer counts (DESIGN.md): an answer that comes after its wait, after escalation, after the
call-out was canceled or ended is recorded as late, never dropped nor reported as taken unrecorded.
Time-skipping test server, the real activities and a real database (issue 15, finding 1)."""
from __future__ import annotations

from datetime import timedelta

from sqlmodel import select

from activities.callout import summarize
from store.audit import verify
from store.callouts import CalloutTarget
from store.db import session_scope
from store.review import callout_stats
from tests.workflows.callout_helpers import (  # noqa: F401 - people, worker: the shared fixtures
    ack, callout, callout_input, events, outbox, people, start, targets, wait_for, worker)
from workflows.callout import WarningCalloutWorkflow






async def test_answer_after_the_callout_ended_is_recorded_late(env, worker, people):
    inp = callout_input()
    handle = await start(env.client, worker, inp)
    result = await handle.result()  # nobody answers: every target runs out, the shards and the call-out end
    head = people["D01.head"]
    assert targets(inp.callout_id)[head].state == "unreachable"
    assert any(n["person_id"] == head for n in result.summary["never_answered"])

    answered = await ack(env.client, inp.callout_id, head, "sms")
    # before: the signal met NOT_FOUND, "workflows: 0", and nothing was recorded
    assert answered.told == 0 and answered.recorded == "late" and len(answered.late) == 1
    [ev] = events(inp.callout_id, "callout.ack.late")
    p = ev.payload
    assert ev.actor == head and ev.channel == "sms" and ev.workflow_id == f"{inp.callout_id}/shard-0"
    assert p["person_id"] == head and p["state_at_answer"] == "unreachable" and p["callout_status"] == "completed"
    assert p["late_by_s"] is not None and p["late_by_s"] >= 0 and p["late_from"]
    t = targets(inp.callout_id)[head]
    assert t.ack_late and t.acknowledged_at == ev.at and t.ack_channel == "sms" and t.state == "unreachable"

    again = await ack(env.client, inp.callout_id, head, "sms")  # the same answer delivered twice: one record
    assert again.recorded in ("late", "repeat")
    assert len(events(inp.callout_id, "callout.ack.late")) == 1

    # the statistics of the review count it as answered late, not as never answered
    stats = callout_stats(inp.callout_id, events(inp.callout_id))
    assert stats["answered_late"] == 1 and [x["person_id"] for x in stats["late"]] == [head]
    assert head not in {u["person_id"] for u in stats["unreachable"]}
    assert stats["acknowledged"] == 0
    # and so does a summary computed now
    with session_scope(write=False) as s:
        rows = list(s.exec(select(CalloutTarget).where(CalloutTarget.callout_id == inp.callout_id)))
    summary = summarize(rows, callout(inp.callout_id).started_at)
    assert summary["answered_late"] == 1 and head not in {n["person_id"] for n in summary["never_answered"]}
    with session_scope(write=False) as s:
        assert verify(s).ok


async def test_answer_after_cancel_is_recorded_late(env, worker, people):
    inp = callout_input()
    handle = await start(env.client, worker, inp)
    resp = people["330110001001.resp"]
    await wait_for(lambda: [m for m in outbox(inp.callout_id, person_id=resp) if m.provider_id], what="first SMS")
    await handle.signal(WarningCalloutWorkflow.cancel, "CAP Cancel")
    assert (await handle.result()).status == "canceled"
    assert targets(inp.callout_id)[resp].state == "canceled"

    answered = await ack(env.client, inp.callout_id, resp, "link")
    assert answered.recorded == "late"
    [ev] = events(inp.callout_id, "callout.ack.late")
    assert ev.payload["state_at_answer"] == "canceled" and ev.payload["callout_status"] == "canceled"
    t = targets(inp.callout_id)[resp]
    assert t.ack_late and t.acknowledged_at is not None and t.state == "canceled"


async def test_answer_after_the_deputy_acknowledged_is_recorded_late_by_the_running_shard(env, worker, people):
    inp = callout_input()
    handle = await start(env.client, worker, inp)
    head, deputy = people["D01.head"], people["D01.deputy"]
    await wait_for(lambda: [m for m in outbox(inp.callout_id, person_id=head) if m.provider_id], what="first SMS")
    await env.sleep(timedelta(minutes=31))  # two rounds of SMS and voice (30 min), then the deputy is called
    await wait_for(lambda: targets(inp.callout_id)[head].escalated_to, what="escalation to the deputy")
    await ack(env.client, inp.callout_id, deputy, "sms")
    await wait_for(lambda: targets(inp.callout_id)[head].state == "acknowledged", what="the deputy's answer")

    answered = await ack(env.client, inp.callout_id, head, "voice")  # the head answers after all
    assert answered.told == 1  # the shard still runs (other targets wait): it records the answer itself
    ev = await wait_for(lambda: events(inp.callout_id, "callout.ack.late"), what="late answer recorded")
    p = ev[0].payload
    assert ev[0].actor == head and ev[0].channel == "voice"
    assert p["state_at_answer"] == "acknowledged" and p["acknowledged_by"] == deputy and p["late_by_s"] >= 0
    t = targets(inp.callout_id)[head]
    assert t.ack_by == deputy and not t.ack_late  # the target was answered on time (by the deputy)
    await handle.result()
