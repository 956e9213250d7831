"""到户到人 relay (workflows/relay.py) on the time-skipping test server: a village person who acknowledged is asked
to inform the households in the danger zones and confirm ("到户 35"); unconfirmed by the deadline, the town
head is called; a grid worker or the duty office may confirm on their behalf; a late confirmation is recorded
late; a plan without a relay section runs as before."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlmodel import select

from api.services import answers
from api.services.callouts import CalloutError, confirm_relay
from store.callouts import CalloutRelay
from store.db import session_scope
from store.directory import Post
from tests.workflows.callout_helpers import (
    ack,
    callout_input,
    events,
    outbox,
    people,  # noqa: F401 - the shared fixtures
    start,
    wait_for,
    worker,  # noqa: F401
)


def relay_msgs(cid: str, person: str) -> list:
    return [m for m in outbox(cid, person_id=person) if (m.meta or {}).get("relay")]


def relays(cid: str) -> dict[str, CalloutRelay]:
    with session_scope(write=False) as s:
        return {r.org_unit_id: r for r in s.exec(select(CalloutRelay).where(CalloutRelay.callout_id == cid))}


async def _asked(env, worker, people):
    inp = callout_input()  # heavy rain, orange: the villages relay within 60 minutes
    handle = await start(env.client, worker, inp)
    resp = people["330110001001.resp"]
    await wait_for(lambda: outbox(inp.callout_id, person_id=resp), what="the call-out's first SMS")
    assert not relay_msgs(inp.callout_id, resp)  # nobody is asked to relay before they acknowledge
    await ack(env.client, inp.callout_id, resp, "sms")
    await wait_for(lambda: relay_msgs(inp.callout_id, resp), what="the relay request")
    return inp, handle, resp


async def test_relay_confirmed_in_time(env, worker, people):
    inp, handle, resp = await _asked(env, worker, people)
    [msg] = relay_msgs(inp.callout_id, resp)
    assert msg.body.startswith("【到户】") and "到户 35" in msg.body and msg.reply_code
    [req] = events(inp.callout_id, "relay.requested")
    assert req.payload["person_id"] == resp and req.payload["due_at"]
    got = await answers.acknowledge(env.client, inp.callout_id, resp, "sms", ref="sms:relay-1", households=35)
    assert got.recorded == "taken"
    [ok] = await wait_for(lambda: events(inp.callout_id, "relay.confirmed"), what="the confirmation")
    assert ok.payload["households"] == 35 and ok.payload["by"] == resp and not ok.payload["on_behalf"]
    assert ok.payload["late"] is False
    # the same reply delivered twice is one answer; a second figure (a correction) is recorded too
    await answers.acknowledge(env.client, inp.callout_id, resp, "sms", ref="sms:relay-1", households=35)
    await answers.acknowledge(env.client, inp.callout_id, resp, "sms", ref="sms:relay-2", households=40)
    again = await wait_for(lambda: len(events(inp.callout_id, "relay.confirmed")) == 2
                           and events(inp.callout_id, "relay.confirmed")[1], what="the second figure")
    assert again.payload["households"] == 40 and again.payload["again"]
    result = await handle.result()
    assert not [e for e in events(inp.callout_id, "relay.escalated") if e.payload["target"] == req.payload["target"]]
    row = relays(inp.callout_id)["330110001001"]
    assert (row.state, row.households, row.late, row.escalated_to, row.answers) == ("confirmed", 40, False, [], 2)
    assert result.summary["relay"]["confirmed"] == 1 and result.summary["relay"]["households"] == 40
    assert len(events(inp.callout_id, "relay.confirmed")) == 2
    assert not events(inp.callout_id, "relay.late")


async def test_relay_not_confirmed_calls_the_town_head_then_a_late_answer_is_recorded_late(env, worker, people):
    inp, handle, resp = await _asked(env, worker, people)
    town_head = people["330110001.head"]
    await env.sleep(timedelta(minutes=65))  # past the 60-minute deadline
    [esc] = await wait_for(lambda: [e for e in events(inp.callout_id, "relay.escalated")
                                    if e.payload["person_id"] == town_head], what="the escalation")
    await wait_for(lambda: relay_msgs(inp.callout_id, town_head), what="the town head called")
    assert {m.channel for m in relay_msgs(inp.callout_id, town_head)} == {"sms", "voice"}
    assert any(m.body.startswith("【到户督促】") for m in relay_msgs(inp.callout_id, town_head))
    assert relays(inp.callout_id)["330110001001"].state == "escalated"
    # the village person answers after the escalation: recorded, late
    got = await answers.acknowledge(env.client, inp.callout_id, resp, "sms", ref="sms:relay-late", households=12)
    assert got.recorded == "taken"
    try:
        [late] = await wait_for(lambda: events(inp.callout_id, "relay.late"), what="the late confirmation")
    except AssertionError:
        for e in events(inp.callout_id):
            print(e.kind, e.step_id, e.payload)
        raise
    assert late.payload["households"] == 12 and late.payload["late"] and late.payload["late_by_s"] > 0
    assert not events(inp.callout_id, "relay.confirmed")
    await handle.result()
    row = relays(inp.callout_id)["330110001001"]
    assert (row.state, row.households, row.late) == ("confirmed", 12, True)
    assert row.escalated_to == [town_head]


async def test_grid_worker_confirms_on_behalf(env, worker, people):
    from store.directory import Person, Position

    with session_scope() as s:
        s.add(Position(code="grid_worker", name_zh="网格员", name_en="Grid worker"))
        s.add(Person(id="p-grid", name="网格员戊", mobile="13900000099", org_unit_id="330110001001"))
        s.flush()
        s.add(Post(position_code="grid_worker", org_unit_id="330110001001", person_id="p-grid"))
    inp, handle, resp = await _asked(env, worker, people)
    with pytest.raises(CalloutError) as refused:  # only a grid worker of that village reports for it
        await confirm_relay(env.client, inp.callout_id, resp, 18, actor="duty-officer-1", reported_by=people["330110001.head"])
    assert refused.value.status == 422
    with pytest.raises(CalloutError) as refused:  # no relay was asked of the town head
        await confirm_relay(env.client, inp.callout_id, people["330110001.head"], 18, actor="duty-officer-1")
    assert refused.value.status == 404
    out = await confirm_relay(env.client, inp.callout_id, resp, 18, actor="duty-officer-1", reported_by="p-grid")
    assert out["recorded"] == "taken"
    [ok] = await wait_for(lambda: events(inp.callout_id, "relay.confirmed"), what="the confirmation")
    assert ok.payload["households"] == 18 and ok.payload["on_behalf"] and ok.payload["for"] == resp
    assert ok.payload["by"] == "duty-officer-1" and ok.payload["reported_by"] == "p-grid"
    await handle.result()
    row = relays(inp.callout_id)["330110001001"]
    assert (row.households, row.on_behalf, row.confirmed_by) == (18, True, "duty-officer-1")


async def test_plan_without_relay_is_unchanged(env, worker, people):
    inp = callout_input("thunderstorm_gale")
    assert inp.plan.relay is None
    handle = await start(env.client, worker, inp)
    resp = people["330110001001.resp"]
    await wait_for(lambda: outbox(inp.callout_id, person_id=resp), what="the call-out's first SMS")
    await ack(env.client, inp.callout_id, resp, "sms")
    result = await handle.result()
    assert not [e for e in events(inp.callout_id) if e.kind.startswith("relay.")]
    assert not [m for m in outbox(inp.callout_id) if (m.meta or {}).get("relay")]
    assert not relays(inp.callout_id) and result.summary.get("relay") is None


async def test_relay_answer_before_the_acknowledgement_acknowledges_and_confirms(env, worker, people):
    inp = callout_input()
    handle = await start(env.client, worker, inp)
    resp = people["330110001002.resp"]
    await wait_for(lambda: outbox(inp.callout_id, person_id=resp), what="the call-out's first SMS")
    # "到户 8" says the warning arrived and the households were told, both at once
    await answers.acknowledge(env.client, inp.callout_id, resp, "sms", ref="sms:early", households=8)
    [ok] = await wait_for(lambda: events(inp.callout_id, "relay.confirmed"), what="the confirmation")
    assert ok.payload["households"] == 8 and ok.payload["for"] == resp
    acks = [e for e in events(inp.callout_id, "callout.ack") if e.payload["person_id"] == resp]
    assert len(acks) == 1
    await handle.result()
    assert relays(inp.callout_id)["330110001002"].households == 8


async def test_cancel_stops_open_relays_and_a_later_answer_is_recorded_late(env, worker, people):
    from workflows.callout import WarningCalloutWorkflow

    inp, handle, resp = await _asked(env, worker, people)
    await handle.signal(WarningCalloutWorkflow.cancel, "预警解除")
    await handle.result()
    assert [e.payload["target"] for e in events(inp.callout_id, "relay.canceled")]
    assert relays(inp.callout_id)["330110001001"].state == "canceled"
    got = await answers.acknowledge(env.client, inp.callout_id, resp, "sms", ref="sms:after-end", households=5)
    assert got.recorded == "late"  # the shard has ended: recorded through the store, with the figure
    [late] = events(inp.callout_id, "relay.late")
    assert late.payload["households"] == 5 and late.payload["for"] == resp and late.payload["recorded_by"] == "store"
    row = relays(inp.callout_id)["330110001001"]
    assert (row.households, row.late, row.answers) == (5, True, 1)


async def test_cancel_while_only_the_relays_run_stops_them(env, worker, people):
    from workflows.callout import WarningCalloutWorkflow

    inp, handle, resp = await _asked(env, worker, people)
    await env.sleep(timedelta(minutes=50))  # every other target is settled (unreachable); the relay waits on
    await wait_for(lambda: [e for e in events(inp.callout_id, "callout.unreachable")
                            if e.payload["person_id"] == people["330110001002.resp"]], what="the call-out's own end")
    assert not events(inp.callout_id, "relay.escalated")
    await handle.signal(WarningCalloutWorkflow.cancel, "预警解除")
    await handle.result()
    assert relays(inp.callout_id)["330110001001"].state == "canceled"
    assert not events(inp.callout_id, "relay.escalated")  # the town head was never called


async def test_the_deputy_acknowledged_and_is_asked_the_village_person_may_confirm(env, worker, people):
    inp = callout_input()
    handle = await start(env.client, worker, inp)
    resp, deputy = people["330110001001.resp"], people["330110001001.head"]
    await wait_for(lambda: outbox(inp.callout_id, person_id=resp), what="the call-out's first SMS")
    await env.sleep(timedelta(minutes=21))  # the village person does not answer: their deputy is called
    await wait_for(lambda: outbox(inp.callout_id, person_id=deputy), what="the deputy called")
    await ack(env.client, inp.callout_id, deputy, "sms")
    await wait_for(lambda: relay_msgs(inp.callout_id, deputy), what="the relay asked of the deputy")
    assert not relay_msgs(inp.callout_id, resp)
    await answers.acknowledge(env.client, inp.callout_id, resp, "sms", ref="sms:resp-relay", households=9)
    [ok] = await wait_for(lambda: events(inp.callout_id, "relay.confirmed"), what="the confirmation")
    assert (ok.payload["households"], ok.payload["by"], ok.payload["for"]) == (9, resp, deputy)
    # the duty office may name the village person too (the relay was asked of their deputy)
    out = await confirm_relay(env.client, inp.callout_id, resp, 10, actor="duty-officer-1")
    assert out["recorded"] == "taken"
    await wait_for(lambda: len(events(inp.callout_id, "relay.confirmed")) == 2, what="the duty office's figure")
    await handle.result()
    assert not events(inp.callout_id, "relay.late")  # the answer went to the relay, not left unrecorded or late
    assert relays(inp.callout_id)["330110001001"].households == 10
