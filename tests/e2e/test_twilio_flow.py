"""The call-out with YINGJI_GATEWAY=twilio: the real SDK sends to the fake Twilio server, which
plays Twilio's callbacks (signed) into the FastAPI app; the workflows run on the time-skipping
server. Keypress 1 acknowledges, busy moves on at once, a machine is never an answer, an
opted-out number is reported, a forged callback reaches nothing."""
from __future__ import annotations

import uuid
from datetime import timedelta
from types import SimpleNamespace

import httpx
import pytest
from sqlmodel import select
from temporalio.service import RPCError

from api.app import create_app
from store.audit import AuditEvent
from store.callouts import Callout, CalloutTarget
from store.db import session_scope
from tests.factories import small_district
from tests.fakes.twilio_server import FakeTwilio, use_fake_twilio
from tests.workflows.callout_helpers import callout_input, outbox, start, targets, wait_for
from worker import build_worker

PUBLIC = "https://yingji.example.gov.cn"
SMS_IN = f"{PUBLIC}/api/webhooks/twilio/sms"


@pytest.fixture(scope="module")
def env(module_time_env):
    """A time-skipping server of this module's own (tests/conftest.py): call-outs left mid-way hold no one
    else's clock."""
    return module_time_env


@pytest.fixture(scope="module")
def fake():
    with FakeTwilio() as f:
        yield f


async def _terminate(client) -> None:
    with session_scope(write=False) as s:
        ids = list(s.exec(select(Callout.id)))
        ids += [f"{c}/shard-{n}" for c, n in s.exec(select(CalloutTarget.callout_id, CalloutTarget.shard).distinct())]
    for wid in ids:
        try:
            await client.get_workflow_handle(wid).terminate("test over")
        except RPCError:
            pass


@pytest.fixture
async def flow(env, fake, db_url, monkeypatch):
    use_fake_twilio(monkeypatch, fake, public_base_url=PUBLIC)
    with session_scope() as s:
        people = small_district(s, missing_deputy=("330110001.deputy",))
    tq = f"tq-{uuid.uuid4().hex[:8]}"
    app = create_app(temporal_client=env.client)
    async with build_worker(env.client, task_queue=tq), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url=PUBLIC) as http:
        yield SimpleNamespace(env=env, tq=tq, people=people, http=http, fake=fake)
        await _terminate(env.client)


def sent(cid: str, person: str, channel: str):
    """The person's messages on a channel that Twilio accepted (they have a sid)."""
    return [m for m in outbox(cid, person_id=person, channel=channel) if m.provider_id]


async def begin(flow):
    inp = callout_input()
    await start(flow.env.client, flow.tq, inp)
    return inp.callout_id


async def first_sms(flow, cid: str, person: str):
    [msg] = await wait_for(lambda: sent(cid, person, "sms"), what="first SMS")
    return msg


async def failed_sms_then_call(flow, cid: str, person: str):
    """The SMS is undelivered (status callback): the call comes at once, not after 10 minutes."""
    msg = await first_sms(flow, cid, person)
    resp = await flow.fake.message_status(flow.http, msg.provider_id, "undelivered", error_code=30003)
    assert resp.status_code == 200, resp.text
    [call] = await wait_for(lambda: sent(cid, person, "voice"), timeout=10, what="a call at once")
    return call


def state(cid: str, person: str) -> CalloutTarget:
    return targets(cid)[person]


async def test_sms_through_the_sdk_then_keypress_1_acknowledges(flow):
    cid = await begin(flow)
    head = flow.people["330110001.head"]
    msg = await first_sms(flow, cid, head)
    twilio_sms = flow.fake.messages[msg.provider_id]
    assert twilio_sms["body"] == msg.body and twilio_sms["to"] == msg.to and msg.reply_code in msg.body
    assert (await flow.fake.message_status(flow.http, msg.provider_id, "delivered")).status_code == 200

    await flow.env.sleep(timedelta(minutes=10, seconds=30))  # nobody answered the SMS
    [call] = await wait_for(lambda: sent(cid, head, "voice"), what="voice call")
    sid = call.provider_id
    assert flow.fake.calls[sid]["_machine_detection"] == "Enable"
    for status in ("initiated", "ringing"):
        assert (await flow.fake.call_status(flow.http, sid, status)).json()["handled"] == "progress"

    twiml = (await flow.fake.answer_call(flow.http, sid, "human")).text
    assert '<Say language="zh-CN">' in twiml and call.meta["voice_text"] in twiml
    assert '<Gather action="' in twiml and 'numDigits="1"' in twiml
    again = (await flow.fake.press(flow.http, sid, "9")).text  # 9: the message again
    assert call.meta["voice_text"] in again and "<Gather" in again
    prompt = (await flow.fake.press(flow.http, sid, "5")).text  # anything else: the prompt again
    assert call.meta["voice_text"] not in prompt and "请按1" in prompt and "<Gather" in prompt
    assert state(cid, head).state != "acknowledged"

    done = (await flow.fake.press(flow.http, sid, "1")).text
    assert "已确认" in done and "<Hangup" in done
    await wait_for(lambda: state(cid, head).state == "acknowledged", what="ack by keypress")
    assert state(cid, head).ack_channel == "voice"
    after = await flow.fake.call_status(flow.http, sid, "completed")
    assert after.json()["handled"] == "already"  # the call's end is not a second outcome


async def test_busy_moves_on_at_once(flow):
    cid = await begin(flow)
    resp = flow.people["330110001001.resp"]  # grassroots: SMS, call, then the deputy
    call = await failed_sms_then_call(flow, cid, resp)
    await flow.fake.call_status(flow.http, call.provider_id, "ringing")
    r = await flow.fake.call_status(flow.http, call.provider_id, "busy")
    assert r.json()["handled"] == "busy"
    await wait_for(lambda: state(cid, resp).escalated_to, timeout=10, what="escalation at once after busy")
    assert state(cid, resp).state == "escalated"


async def test_machine_is_never_an_acknowledgement(flow):
    cid = await begin(flow)
    resp = flow.people["330110001001.resp"]
    call = await failed_sms_then_call(flow, cid, resp)
    twiml = (await flow.fake.answer_call(flow.http, call.provider_id, "machine_start")).text
    assert "<Gather" not in twiml and "<Hangup" in twiml  # nothing to press for a machine
    await wait_for(lambda: state(cid, resp).escalated_to, timeout=10, what="escalation after a machine")
    done = await flow.fake.call_status(flow.http, call.provider_id, "completed", answered_by="machine_start")
    assert done.json()["handled"] == "already"
    t = state(cid, resp)
    assert t.state != "acknowledged" and t.acknowledged_at is None
    assert outbox(cid, provider_id=call.provider_id)[0].status == "machine"


async def test_sms_reply_acknowledges(flow):
    cid = await begin(flow)
    resp = flow.people["330110001001.resp"]
    msg = await first_sms(flow, cid, resp)
    r = await flow.fake.inbound_sms(flow.http, SMS_IN, msg.to, "收到")
    assert r.status_code == 200 and "<Response" in r.text
    await wait_for(lambda: state(cid, resp).state == "acknowledged", what="ack by SMS reply")
    assert state(cid, resp).ack_channel == "sms"


async def test_opted_out_by_status_callback_is_reported_and_moves_on(flow):
    cid = await begin(flow)
    resp = flow.people["330110001001.resp"]
    msg = await first_sms(flow, cid, resp)
    r = await flow.fake.message_status(flow.http, msg.provider_id, "undelivered", error_code=21610)
    assert r.json()["handled"] == "opted_out"
    await wait_for(lambda: sent(cid, resp, "voice"), timeout=10, what="a call instead of the SMS")
    with session_scope(write=False) as s:
        events = list(s.exec(select(AuditEvent).where(AuditEvent.subject == cid,
                                                      AuditEvent.kind == "gateway.opted_out")))
    assert len(events) == 1 and events[0].payload["person_id"] == resp
    assert msg.to not in str(events[0].payload)  # the number is masked in the audit trail
    assert outbox(cid, provider_id=msg.provider_id)[0].status == "opted_out"


async def test_opted_out_at_send_moves_on(flow):
    flow.fake.fail_next(1000, 21610, kind="sms")  # every number has replied STOP
    cid = await begin(flow)
    resp = flow.people["330110001001.resp"]
    [msg] = await wait_for(lambda: [m for m in outbox(cid, person_id=resp, channel="sms") if m.status == "opted_out"],
                           what="SMS refused")
    assert "21610" in msg.error
    await wait_for(lambda: sent(cid, resp, "voice"), timeout=10, what="a call at once")
    with session_scope(write=False) as s:
        sends = list(s.exec(select(AuditEvent).where(AuditEvent.subject == cid, AuditEvent.kind == "callout.sent")))
    assert any(e.payload["person_id"] == resp and e.payload["status"] == "opted_out" for e in sends)


async def test_forged_keypress_reaches_no_workflow(flow):
    cid = await begin(flow)
    resp = flow.people["330110001001.resp"]
    call = await failed_sms_then_call(flow, cid, resp)
    await flow.fake.answer_call(flow.http, call.provider_id, "human")
    action = flow.fake.gather_action(call.provider_id)
    params = flow.fake._call_params(call.provider_id, "in-progress", Digits="1")
    forged = await flow.fake.post(flow.http, action, params, token="someone-elses-token")
    assert forged.status_code == 403
    unsigned = await flow.http.post(action, data=params)
    assert unsigned.status_code == 403
    assert state(cid, resp).state != "acknowledged"
    assert (await flow.fake.press(flow.http, call.provider_id, "1")).status_code == 200
    await wait_for(lambda: state(cid, resp).state == "acknowledged", what="the genuine keypress")


async def test_keypress_2_escalates_at_once(flow):
    cid = await begin(flow)
    resp = flow.people["330110001001.resp"]
    call = await failed_sms_then_call(flow, cid, resp)
    await flow.fake.answer_call(flow.http, call.provider_id, "human")
    twiml = (await flow.fake.press(flow.http, call.provider_id, "2")).text
    assert "无法响应" in twiml and "<Hangup" in twiml
    await wait_for(lambda: state(cid, resp).escalated_to, timeout=10, what="escalation after keypress 2")
    assert state(cid, resp).state == "escalated"
