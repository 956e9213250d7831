"""Every policy path of the call-out, on the time-skipping test server."""
from __future__ import annotations

from datetime import timedelta

from sqlmodel import select

from definitions.schema.common import Level
from store.audit import AuditEvent, verify
from store.db import session_scope
from workflows.callout import SHARD_TASK_TIMEOUT, WarningCalloutWorkflow
from tests.workflows.callout_helpers import (
    ack,
    callout_input,
    outbox,
    people,  # noqa: F401 - the shared fixtures
    report,
    start,
    targets,
    wait_for,
    worker,  # noqa: F401
)


def audit_events(subject):
    with session_scope(write=False) as s:
        return list(s.exec(select(AuditEvent).where(AuditEvent.subject == subject).order_by(AuditEvent.seq)))




async def test_ack_on_first_sms(env, worker, people):
    inp = callout_input()
    handle = await start(env.client, worker, inp)
    resp = people["330110001001.resp"]
    await wait_for(lambda: outbox(inp.callout_id, person_id=resp), what="first SMS")
    # every target got a first SMS (no voice in the first round by day)
    first = outbox(inp.callout_id)
    assert {m.channel for m in first} <= {"sms", "im"}
    await ack(env.client, inp.callout_id, resp, "sms")
    result = await handle.result()
    t = targets(inp.callout_id)
    assert t[resp].state == "acknowledged" and t[resp].ack_channel == "sms"
    assert not t[resp].escalated_to
    voice_to_resp = [m for m in outbox(inp.callout_id, person_id=resp) if m.channel == "voice"]
    assert voice_to_resp == []  # answered before the voice step
    assert result.status == "completed"
    assert result.summary["acknowledged"] >= 1


def _msgs(cid, person, channel=None):
    """Messages handed to the gateway (with a provider id) for a person."""
    return [m for m in outbox(cid, person_id=person) if m.provider_id and (channel is None or m.channel == channel)]


async def test_ack_after_voice_call(env, worker, people):
    inp = callout_input()
    handle = await start(env.client, worker, inp)
    head = people["330110001.head"]
    await wait_for(lambda: _msgs(inp.callout_id, head, "sms"), what="first SMS")
    await env.sleep(timedelta(minutes=10, seconds=30))  # the SMS wait runs out
    voice = await wait_for(lambda: _msgs(inp.callout_id, head, "voice"), what="voice call")
    await report(env.client, voice[0], "completed", digits="1")  # keypress 1
    await wait_for(lambda: targets(inp.callout_id)[head].state == "acknowledged", what="ack")
    await handle.result()
    t = targets(inp.callout_id)[head]
    assert t.ack_channel == "voice" and not t.escalated_to


async def test_no_answer_deputy_then_superior(env, worker, people):
    inp = callout_input()
    handle = await start(env.client, worker, inp)
    result = await handle.result()  # nobody answers: the whole policy runs
    head = people["D01.head"]
    t = targets(inp.callout_id)[head]
    assert t.state == "unreachable"
    assert t.escalated_to == [people["D01.deputy"], people["deputy_head"]]
    assert _msgs(inp.callout_id, people["D01.deputy"]) and _msgs(inp.callout_id, people["deputy_head"])
    # the duty chief is told who could not be reached
    informs = [m for m in _msgs(inp.callout_id, people["duty_chief"]) if "未应答" in m.body]
    assert informs
    # standard policy: sms+im, voice, then repeat once: two voice calls to the head before the deputy
    assert len(_msgs(inp.callout_id, head, "voice")) == 2
    assert result.summary["acknowledged"] == 0 and result.status == "completed"
    # the summary went to the leading leader on duty
    assert any("叫应小结" in m.body for m in _msgs(inp.callout_id, people["leading_leader"]))


async def test_missing_deputy_goes_to_superior(env, worker, people, db_url):
    inp = callout_input()
    handle = await start(env.client, worker, inp)
    await handle.result()
    head = people["330110001.head"]  # this town head has no deputy
    t = targets(inp.callout_id)[head]
    assert t.escalated_to == [people["deputy_head"]]
    kinds = [e.kind for e in audit_events(inp.callout_id) if e.payload.get("target") == t.target_key]
    assert "callout.escalation_skipped" in kinds and "callout.escalated" in kinds


async def test_failed_channel_skips_its_wait(env, worker, people):
    inp = callout_input()
    handle = await start(env.client, worker, inp)
    resp = people["330110001001.resp"]  # grassroots policy: sms, wait 10m, voice
    sms = await wait_for(lambda: _msgs(inp.callout_id, resp, "sms"), what="sms")
    await report(env.client, sms[0], "undelivered")
    voice = await wait_for(lambda: _msgs(inp.callout_id, resp, "voice"), timeout=10, what="voice at once")
    assert (voice[0].created_at - sms[0].created_at) < timedelta(minutes=1)
    await handle.result()


async def test_machine_answer_is_not_an_ack(env, worker, people):
    inp = callout_input()
    handle = await start(env.client, worker, inp)
    resp = people["330110001001.resp"]
    sms = await wait_for(lambda: _msgs(inp.callout_id, resp, "sms"), what="sms")
    await report(env.client, sms[0], "failed")
    voice = await wait_for(lambda: _msgs(inp.callout_id, resp, "voice"), what="voice")
    await report(env.client, voice[0], "completed", answered_by="machine_end_beep", digits="1")
    # the machine moves the policy on to the deputy at once, and never counts as an answer
    await wait_for(lambda: targets(inp.callout_id)[resp].escalated_to, timeout=10, what="escalation after machine")
    assert targets(inp.callout_id)[resp].state != "acknowledged"
    await handle.result()
    assert targets(inp.callout_id)[resp].acknowledged_at is None


async def test_night_starts_with_voice(env, worker, people):
    inp = callout_input(night=True)
    handle = await start(env.client, worker, inp)
    resp = people["330110001001.resp"]
    first = await wait_for(lambda: _msgs(inp.callout_id, resp), what="first message")
    assert first[0].channel == "voice"
    await ack(env.client, inp.callout_id, resp, "voice")
    handle_result = await handle.result()
    assert handle_result.status == "completed"


async def test_update_raising_level_calls_new_tiers(env, worker, people):
    inp = callout_input()
    handle = await start(env.client, worker, inp)
    await wait_for(lambda: _msgs(inp.callout_id, people["330110001.head"]), what="orange tiers called")
    assert not _msgs(inp.callout_id, people["secretary"])
    red = inp.warning.model_copy(update={"level": Level.red, "identifier": inp.warning.identifier + "-u1"})
    await handle.signal(WarningCalloutWorkflow.update, red)
    await wait_for(lambda: _msgs(inp.callout_id, people["secretary"]), what="red tier: district leaders")
    await wait_for(lambda: _msgs(inp.callout_id, people["330110001.secretary"]), what="red tier: town leaders")
    leader_first = _msgs(inp.callout_id, people["secretary"])
    assert leader_first[0].channel == "voice"  # leader policy starts with a voice call
    await handle.result()
    assert "callout.updated" in [e.kind for e in audit_events(inp.callout_id)]


async def test_update_lowering_below_orange_ends_it(env, worker, people):
    inp = callout_input()
    handle = await start(env.client, worker, inp)
    head = people["330110001.head"]
    await wait_for(lambda: _msgs(inp.callout_id, head), what="first SMS")
    yellow = inp.warning.model_copy(update={"level": Level.yellow, "identifier": inp.warning.identifier + "-u2"})
    await handle.signal(WarningCalloutWorkflow.update, yellow)
    result = await handle.result()
    assert result.status == "downgraded"
    assert any("调整" in m.body for m in _msgs(inp.callout_id, head))
    assert targets(inp.callout_id)[head].state == "canceled"
    assert not _msgs(inp.callout_id, head, "voice")  # nobody was called further


async def test_cancel_informs_everyone_reached(env, worker, people):
    inp = callout_input()
    handle = await start(env.client, worker, inp)
    resp = people["330110001001.resp"]
    await wait_for(lambda: _msgs(inp.callout_id, resp), what="first SMS")
    await ack(env.client, inp.callout_id, resp, "link")
    await wait_for(lambda: targets(inp.callout_id)[resp].state == "acknowledged", what="ack")
    await handle.signal(WarningCalloutWorkflow.cancel, "CAP Cancel")
    result = await handle.result()
    assert result.status == "canceled"
    reached = {t.person_id for t in targets(inp.callout_id).values() if t.attempts}
    for pid in reached:
        assert any("解除" in m.body for m in _msgs(inp.callout_id, pid)), pid
    assert targets(inp.callout_id)[resp].state == "acknowledged"


async def test_sends_are_idempotent_and_audit_verifies(env, worker, people, db_url):
    inp = callout_input()
    handle = await start(env.client, worker, inp)
    await handle.result()
    keys = [m.idempotency_key for m in outbox(inp.callout_id)]
    assert len(keys) == len(set(keys))
    with session_scope(write=False) as s:
        assert verify(s).ok


async def test_a_large_call_out_has_fewer_larger_shards(env, worker, people, monkeypatch):
    """Past SHARD_SIZE x MOST_SHARDS persons a call-out's shards grow rather than multiply (issue 25): here the
    least size is 4 and at most 2 shards are made, so each holds half of the persons, leaders in the first."""
    from workflows import callout_models

    monkeypatch.setattr(callout_models, "MOST_SHARDS", 2)  # (read by the resolve activity, outside the sandbox)
    inp = callout_input(level=Level.red, towns=["330110001", "330110002", "330110003"]).model_copy(update={"shard_size": 4})
    handle = await start(env.client, worker, inp)
    await handle.result()
    all_targets = targets(inp.callout_id)
    sizes = [sum(1 for t in all_targets.values() if t.shard == n) for n in sorted({t.shard for t in all_targets.values()})]
    assert len(all_targets) > 8 and sizes == [-(-len(all_targets) // 2), len(all_targets) // 2]
    assert all_targets[people["secretary"]].shard == 0 and all_targets[people["district_head"]].shard == 0
    assert all(_msgs(inp.callout_id, t.person_id) for t in all_targets.values())  # everyone was called


async def test_fan_out_to_shards_leaders_first(env, worker, people):
    inp = callout_input(level=Level.red, towns=["330110001", "330110002", "330110003"]).model_copy(update={"shard_size": 4})
    handle = await start(env.client, worker, inp)
    resp = people["330110003002.resp"]
    await wait_for(lambda: _msgs(inp.callout_id, resp), what="the last shard's first message")
    all_targets = targets(inp.callout_id)
    shards = {t.shard for t in all_targets.values()}
    assert len(shards) >= 4 and max(t.shard for t in all_targets.values()) == len(shards) - 1
    # leaders (district and town principal leaders) are all in the first shard
    assert all_targets[people["secretary"]].shard == 0 and all_targets[people["district_head"]].shard == 0
    # an answer reaches the shard that owns the person
    await ack(env.client, inp.callout_id, resp, "link")
    await wait_for(lambda: targets(inp.callout_id)[resp].state == "acknowledged", what="ack in a late shard")
    desc = [await env.client.get_workflow_handle(f"{inp.callout_id}/shard-{i}").describe() for i in sorted(shards)]
    assert all(d.workflow_type == "CalloutShardWorkflow" for d in desc)
    # a shard's slow task on a starved machine is let finish, not timed out and retried at Temporal's 10 s
    assert {d.raw_description.execution_config.default_workflow_task_timeout.ToTimedelta() for d in desc} \
        == {SHARD_TASK_TIMEOUT}
    await handle.result()
