"""The call-out with YINGJI_GATEWAY_SMS=aliyun and YINGJI_GATEWAY_VOICE=aliyun: the official SDKs send to the fake
Aliyun (which checks their signatures), which pushes Aliyun's receipts, replies and keys (JSON arrays, with the
token) into the FastAPI app; the workflows run on the time-skipping server. An SmsUp reply acknowledges, an
IvrReport key 1 acknowledges, an undelivered SmsReport moves on to the call at once, busy and key 2 escalate at once,
a call's end without a key waits for its IvrReport, a push without the token reaches nothing."""
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
from tests.fakes.aliyun_server import TEMPLATE_CODES, FakeAliyun, approved_definitions, use_fake_aliyun
from tests.workflows.callout_helpers import callout_input, outbox, start, targets, wait_for
from worker import build_worker

PUBLIC = "https://yingji.example.gov.cn"


@pytest.fixture(scope="module")
def env(module_time_env):
    """A time-skipping server of this module's own (tests/conftest.py): call-outs left mid-way hold no one
    else's clock."""
    return module_time_env


@pytest.fixture(scope="module")
def fake():
    with FakeAliyun(webhook_base=PUBLIC) as f:
        yield f


@pytest.fixture(scope="module")
def definitions(tmp_path_factory):
    return approved_definitions(tmp_path_factory.mktemp("aliyun-e2e") / "definitions")


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
async def flow(env, fake, definitions, db_url, monkeypatch):
    use_fake_aliyun(monkeypatch, fake, definitions, public_base_url=PUBLIC)
    with session_scope() as s:
        people = small_district(s, missing_deputy=("330110001.deputy",))
    tq = f"tq-{uuid.uuid4().hex[:8]}"
    app = create_app(temporal_client=env.client)
    async with build_worker(env.client, task_queue=tq), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url=PUBLIC) as http:
        yield SimpleNamespace(env=env, tq=tq, people=people, http=http, fake=fake)
        await _terminate(env.client)


def sent(cid: str, person: str, channel: str):
    """The person's messages on a channel that Aliyun accepted (they have a BizId / CallId)."""
    return [m for m in outbox(cid, person_id=person, channel=channel) if m.provider_id]


async def begin(flow) -> str:
    inp = callout_input()
    await start(flow.env.client, flow.tq, inp)
    return inp.callout_id


async def first_sms(flow, cid: str, person: str):
    [msg] = await wait_for(lambda: sent(cid, person, "sms"), what="first SMS")
    return msg


async def undelivered_then_call(flow, cid: str, person: str):
    """The SMS is undelivered (SmsReport): the call comes at once, not after 10 minutes."""
    msg = await first_sms(flow, cid, person)
    r = await flow.fake.sms_report(flow.http, msg.provider_id, success=False, err_code="MK:0001")
    assert r.status_code == 200 and r.json()["code"] == 0, r.text
    [call] = await wait_for(lambda: sent(cid, person, "voice"), timeout=10, what="a call at once")
    return call


def state(cid: str, person: str) -> CalloutTarget:
    return targets(cid)[person]


async def test_sms_by_template_then_an_ivr_key_1_acknowledges(flow):
    cid = await begin(flow)
    head = flow.people["330110001.head"]
    msg = await first_sms(flow, cid, head)
    aliyun_sms = flow.fake.messages[msg.provider_id]
    assert aliyun_sms["template_code"] == TEMPLATE_CODES["callout.notify"] and aliyun_sms["out_id"] == str(msg.id)
    assert aliyun_sms["params"]["code"] == msg.reply_code and aliyun_sms["params"]["link"] in msg.body
    assert aliyun_sms["params"]["headline"] == "青溪区气象台发布暴雨橙色预警"
    r = await flow.fake.sms_report(flow.http, msg.provider_id)
    assert r.json() == {"code": 0, "msg": "成功", "handled": {"delivered": 1}}
    assert outbox(cid, provider_id=msg.provider_id)[0].status == "delivered"

    await flow.env.sleep(timedelta(minutes=10, seconds=30))  # nobody answered the SMS
    [call] = await wait_for(lambda: sent(cid, head, "voice"), what="voice call")
    assert flow.fake.calls[call.provider_id]["action"] == "IvrCall"
    # the call ended without a key: that is the IvrReport's to say, not the call result's
    r = await flow.fake.voice_report(flow.http, call.provider_id, "200000")
    assert r.json()["handled"] == {"waiting for the IvrReport": 1}
    assert state(cid, head).state != "acknowledged" and not state(cid, head).escalated_to
    r = await flow.fake.ivr_report(flow.http, call.provider_id, "91")  # 9 replayed the message, then 1
    assert r.json()["handled"] == {"ack": 1}
    await wait_for(lambda: state(cid, head).state == "acknowledged", what="ack by keypress")
    assert state(cid, head).ack_channel == "voice"
    again = await flow.fake.voice_report(flow.http, call.provider_id, "200000")
    assert again.json()["handled"] == {"already": 1}  # the call's end is not a second outcome


async def test_a_reply_acknowledges_once(flow):
    cid = await begin(flow)
    resp = flow.people["330110001001.resp"]
    msg = await first_sms(flow, cid, resp)
    phone = flow.fake.messages[msg.provider_id]["phone"]  # as Aliyun writes it: 138…, without +86
    r = await flow.fake.sms_up(flow.http, phone, "收到", sequence_id=4242)
    assert r.status_code == 200 and r.json()["handled"] == {"ack": 1}, r.text
    await wait_for(lambda: state(cid, resp).state == "acknowledged", what="ack by SMS reply")
    assert state(cid, resp).ack_channel == "sms"
    again = await flow.fake.sms_up(flow.http, phone, "收到", sequence_id=4242)  # Aliyun pushes it twice
    assert again.status_code == 200 and again.json()["handled"] == {"duplicate": 1}, again.text
    with session_scope(write=False) as s:
        acks = s.exec(select(AuditEvent).where(AuditEvent.subject == cid, AuditEvent.kind == "callout.ack")).all()
    assert [a.payload.get("person_id") for a in acks].count(resp) == 1


async def test_busy_moves_on_at_once(flow):
    cid = await begin(flow)
    resp = flow.people["330110001001.resp"]  # grassroots: SMS, call, then the deputy
    call = await undelivered_then_call(flow, cid, resp)
    r = await flow.fake.voice_report(flow.http, call.provider_id, "200002")
    assert r.json()["handled"] == {"busy": 1}
    await wait_for(lambda: state(cid, resp).escalated_to, timeout=10, what="escalation at once after busy")
    assert state(cid, resp).state == "escalated"
    assert outbox(cid, provider_id=call.provider_id)[0].status == "busy"


async def test_powered_off_is_a_failure_with_aliyuns_words(flow):
    cid = await begin(flow)
    resp = flow.people["330110001001.resp"]
    call = await undelivered_then_call(flow, cid, resp)
    r = await flow.fake.voice_report(flow.http, call.provider_id, "200010")
    assert r.json()["handled"] == {"failed": 1}
    await wait_for(lambda: state(cid, resp).escalated_to, timeout=10, what="escalation after 关机")
    row = outbox(cid, provider_id=call.provider_id)[0]
    assert row.status == "failed" and "关机" in row.error


async def test_key_2_escalates_at_once(flow):
    cid = await begin(flow)
    resp = flow.people["330110001001.resp"]
    call = await undelivered_then_call(flow, cid, resp)
    r = await flow.fake.ivr_report(flow.http, call.provider_id, "2")
    assert r.json()["handled"] == {"declined": 1}
    await wait_for(lambda: state(cid, resp).escalated_to, timeout=10, what="escalation after keypress 2")
    assert state(cid, resp).state == "escalated"


async def test_a_push_without_the_token_reaches_no_workflow(flow):
    cid = await begin(flow)
    resp = flow.people["330110001001.resp"]
    call = await undelivered_then_call(flow, cid, resp)
    forged = await flow.fake.ivr_report(flow.http, call.provider_id, "1", token="guessed")
    assert forged.status_code == 403
    assert state(cid, resp).state != "acknowledged"
    other = await flow.fake.push(flow.http, "voice/ivr", [{"call_id": "999^1", "out_id": "999999", "dtmf": "1"}])
    assert other.json()["handled"] == {"unknown": 1}  # a call yingji never placed
    assert (await flow.fake.ivr_report(flow.http, call.provider_id, "1")).status_code == 200
    await wait_for(lambda: state(cid, resp).state == "acknowledged", what="the genuine keypress")


async def test_the_simulator_cannot_answer_for_a_message_aliyun_sent(flow, monkeypatch):
    """GATEWAY is still the simulator here (its console stays on): a message that went through Aliyun is not its
    to answer."""
    from config import get_settings

    monkeypatch.setenv("YINGJI_ADMIN_TOKEN", "aliyun-admin")
    get_settings.cache_clear()
    cid = await begin(flow)
    resp = flow.people["330110001001.resp"]
    msg = await first_sms(flow, cid, resp)
    r = await flow.http.post(f"/api/simulator/messages/{msg.id}", json={"outcome": "reply", "body": "1"},
                             headers={"Authorization": "Bearer aliyun-admin"})
    assert r.status_code == 409 and "aliyun_sms" in r.text, r.text
    assert state(cid, resp).state != "acknowledged"
