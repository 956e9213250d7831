"""The Aliyun SMS and voice gateways: the official SDKs (dysmsapi, dyvmsapi, tea-openapi's ACS3 signature) against
the local fake Aliyun, which checks the signature as Aliyun does, through the real delivery code (outbox claim,
rate gates, results). Approved templates and their parameters, OutId, exactly one send per message whatever fails,
QuerySendDetails before sending again; the pushes' token; `yingji definitions check` with the Aliyun gateway."""
from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import yaml
from sqlalchemy import update
from sqlmodel import select
from typer.testing import CliRunner

from activities.delivery import Claim, Delivery, _begin_call, _claim, deliver
from activities.gateways import OutgoingMessage, gateway_for, reset_gateways
from activities.gateways.aliyun_sms import CHINA, AliyunSmsGateway
from activities.gateways.aliyun_voice import AliyunVoiceGateway
from config import get_settings
from store.db import session_scope
from store.directory import Person
from store.messages import OutboxMessage
from tests.fakes.aliyun_server import TEMPLATE_CODES, VOICE_CODES, FakeAliyun, approved_definitions, use_fake_aliyun

VARS = {"event": "暴雨", "level": "橙色", "headline": "暴雨橙色预警", "area": "第1镇", "name": ""}


@pytest.fixture(scope="module")
def fake():
    with FakeAliyun() as f:
        yield f


@pytest.fixture(scope="module")
def definitions(tmp_path_factory):
    return approved_definitions(tmp_path_factory.mktemp("aliyun") / "definitions")


@pytest.fixture
def aliyun(fake, definitions, db_url, monkeypatch):
    use_fake_aliyun(monkeypatch, fake, definitions)
    gw = gateway_for("sms")
    assert isinstance(gw, AliyunSmsGateway) and isinstance(gateway_for("voice"), AliyunVoiceGateway)
    gw.throttle_backoff_s = 0.01
    yield fake
    reset_gateways()


def sms(n: int, kind: str | None = "callout.notify", body: str | None = None) -> Delivery:
    meta = {"kind": kind, "vars": VARS, "purpose": "notify"} if kind else {}
    return Delivery(key=f"a/{n}/sms", channel="sms", to=f"+86138000{n:05d}", reply_code="4321",
                    body=body or f"【叫应】暴雨橙色预警,范围:第1镇。请立即回复1或4321确认,或点击 https://y.test/s/{n}",
                    person_id=f"p{n}", subject="callout-a", meta=meta)


def voice(n: int, answer: bool = True) -> Delivery:
    return Delivery(key=f"a/{n}/voice", channel="voice", to=f"+86139000{n:05d}", body="【叫应】测试",
                    voice_text=f"暴雨橙色预警 {n}", person_id=f"p{n}", subject="callout-a",
                    reply_code="4321" if answer else None)


def rows() -> dict[str, OutboxMessage]:
    with session_scope(write=False) as s:
        return {r.idempotency_key: r for r in s.exec(select(OutboxMessage))}


def backdate() -> None:
    """Rows at the gateway when their attempt died, as a retry finds them: their calls long over."""
    with session_scope() as s:
        s.execute(update(OutboxMessage).where(OutboxMessage.gateway_at.is_not(None))
                  .values(gateway_at=datetime.now(UTC) - timedelta(minutes=1)))


# ------------------------------------------------------------------ SMS: what goes to Aliyun


async def test_sms_is_the_approved_template_with_its_parameters_and_out_id(aliyun):
    [out] = await deliver([sms(1)])
    row = rows()["a/1/sms"]
    [msg] = aliyun.messages.values()
    assert out.status == "sent" and out.provider_id == msg["biz_id"] == row.provider_id
    assert msg["phone"] == "13800000001" and msg["out_id"] == str(row.id) and msg["sign_name"] == "青溪区应急"
    assert msg["template_code"] == TEMPLATE_CODES["callout.notify"]
    assert msg["params"] == {"headline": "暴雨橙色预警", "area": "第1镇", "code": "4321", "link": "https://y.test/s/1"}
    assert row.gateway == "aliyun_sms" and "link" not in row.meta["vars"]  # the signed link stays out of meta


async def test_a_drill_and_a_message_of_no_kind_go_as_the_notice_with_the_whole_text(aliyun):
    await deliver([sms(1, body="【演练】【叫应】暴雨橙色预警 回复1"), sms(2, kind=None, body="【交接班】请接班")])
    by_phone = {m["phone"]: m for m in aliyun.messages.values()}
    assert by_phone["13800000001"]["template_code"] == by_phone["13800000002"]["template_code"] == TEMPLATE_CODES["notice"]
    assert by_phone["13800000001"]["params"] == {"content": "【演练】【叫应】暴雨橙色预警 回复1"}
    assert by_phone["13800000002"]["params"] == {"content": "【交接班】请接班"}


async def test_a_wrong_secret_is_refused_by_the_signature_check_and_nothing_is_sent(aliyun, monkeypatch):
    monkeypatch.setenv("YINGJI_ALIYUN_ACCESS_KEY_SECRET", "not-the-secret")
    get_settings.cache_clear()
    reset_gateways()
    [out] = await deliver([sms(1)])
    assert out.status == "failed" and "SignatureDoesNotMatch" in out.error
    assert aliyun.messages == {} and ("SendSms", "SignatureDoesNotMatch") in aliyun.refused


async def test_an_aliyun_error_is_the_message_outcome(aliyun):
    aliyun.fail_next(1, "isv.MOBILE_NUMBER_ILLEGAL")
    [out] = await deliver([sms(1)])
    assert out.status == "failed" and "isv.MOBILE_NUMBER_ILLEGAL" in out.error
    assert rows()["a/1/sms"].status == "failed"


async def test_the_numbers_own_limit_is_a_failure_not_a_retry(aliyun):
    aliyun.fail_next(1, "isv.BUSINESS_LIMIT_CONTROL")
    [out] = await deliver([sms(1)])
    assert out.status == "failed" and "BUSINESS_LIMIT_CONTROL" in out.error
    assert len([r for r in aliyun.requests if r.action == "SendSms"]) == 1


async def test_throttling_is_retried_at_the_gate(aliyun):
    aliyun.fail_next(2, "Throttling.User", http_status=400)
    [out] = await deliver([sms(1)])
    assert out.status == "sent" and len(aliyun.created("sms")) == 1
    assert [r.code for r in aliyun.requests if r.action == "SendSms"] == ["Throttling.User", "Throttling.User", "OK"]


async def test_a_5xx_is_settled_by_query_send_details_not_by_sending_again(aliyun):
    aliyun.fail_next(1, "ServiceUnavailable", http_status=503)
    [out] = await deliver([sms(1)])
    assert out.status == "failed" and "no such SMS" in out.error
    send, *asked = aliyun.requests
    assert send.action == "SendSms" and {r.action for r in asked} == {"QuerySendDetails"}
    # the day it was claimed, and the next when that is within minutes (CI once ran this at 23:59 in Beijing)
    days = [r.params["SendDate"] for r in asked]
    assert datetime.now(CHINA).strftime("%Y%m%d") in days and len(days) == len(set(days)) <= 2


# ------------------------------------------------------------------ SMS: exactly one send


async def test_a_retried_activity_sends_once(aliyun):
    first = await deliver([sms(1), voice(2)])
    again = await deliver([sms(1), voice(2)])
    assert len(aliyun.created()) == 2
    assert [o.fresh for o in again] == [False, False] and [o.provider_id for o in first] == [o.provider_id for o in again]


async def test_a_crash_between_sending_and_the_result_is_found_by_out_id(aliyun):
    items = [sms(1), sms(2)]
    crashed = Claim("wf/run/1", 1)
    claimed = await asyncio.to_thread(_claim, items, crashed)
    row = claimed[items[0].key]  # Aliyun got the first… then the worker died: no result recorded
    assert await asyncio.to_thread(_begin_call, row["id"], crashed)
    msg = OutgoingMessage(outbox_id=row["id"], idempotency_key=items[0].key, channel="sms", to=items[0].to,
                          body=items[0].body, created_at=row["created_at"], kind="callout.notify", values=VARS)
    assert (await gateway_for("sms").send(msg)).status == "sent"
    backdate()
    outcomes = {o.key: o for o in await deliver(items)}  # the retry
    assert sorted(m["phone"] for m in aliyun.messages.values()) == ["13800000001", "13800000002"]  # once each
    assert outcomes[items[0].key].status == "sent" and outcomes[items[0].key].provider_id == f"aliyun-out:{row['id']}"
    assert any(r.action == "QuerySendDetails" and r.params["PhoneNumber"] == "13800000001" for r in aliyun.requests)
    assert outcomes[items[1].key].status == "sent"


# ------------------------------------------------------------------ voice


async def test_a_call_that_wants_an_answer_is_an_ivr_call_with_keys_1_2_9(aliyun):
    [out] = await deliver([voice(1)])
    [call] = aliyun.calls.values()
    p = call["params"]
    assert call["action"] == "IvrCall" and out.provider_id == call["call_id"] == rows()["a/1/voice"].provider_id
    assert p["CalledNumber"] == "13900000001" and p["CalledShowNumber"] == "057100000000"
    assert p["StartCode"] == VOICE_CODES["ivr_start"] and json.loads(p["StartTtsParams"]) == {"content": "暴雨橙色预警 1"}
    keys = {p[f"MenuKeyMap.{i}.Key"]: p[f"MenuKeyMap.{i}.Code"] for i in (1, 2, 3)}
    assert keys == {"1": VOICE_CODES["key_1"], "2": VOICE_CODES["key_2"], "9": VOICE_CODES["ivr_start"]}
    assert p["ByeCode"] == VOICE_CODES["bye"] and call["out_id"] == str(rows()["a/1/voice"].id)


async def test_a_notice_call_is_single_call_by_tts(aliyun):
    await deliver([voice(1, answer=False)])
    [call] = aliyun.calls.values()
    assert call["action"] == "SingleCallByTts" and call["params"]["TtsCode"] == VOICE_CODES["notice"]
    assert json.loads(call["params"]["TtsParam"]) == {"content": "暴雨橙色预警 1"}


async def lost_call(item: Delivery) -> dict:
    """A call placed by an attempt that died before recording it."""
    crashed = Claim("wf/run/v", 1)
    row = (await asyncio.to_thread(_claim, [item], crashed))[item.key]
    assert await asyncio.to_thread(_begin_call, row["id"], crashed)
    msg = OutgoingMessage(outbox_id=row["id"], idempotency_key=item.key, channel="voice", to=item.to, body=item.body,
                          voice_text=item.voice_text, reply_code=item.reply_code, created_at=row["created_at"])
    assert (await gateway_for("voice").send(msg)).status == "sent"
    backdate()
    return row


async def test_a_lost_call_is_never_placed_again(aliyun):
    await lost_call(voice(1))
    [out] = await deliver([voice(1)])
    assert out.status == "failed" and "not sent again" in out.error
    assert len(aliyun.calls) == 1


async def test_a_lost_call_named_by_a_push_is_found(aliyun):
    from api.app import create_app

    row = await lost_call(voice(1))
    [call_id] = aliyun.calls
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(temporal_client=None)),
                                 base_url="http://yingji.test") as http:
        r = await aliyun.call_progress(http, call_id, "200100")
    assert r.status_code == 200 and r.json()["handled"] == {"progress": 1}
    [out] = await deliver([voice(1)])
    assert out.status == "sent" and out.provider_id == call_id and out.outbox_id == row["id"]
    assert len(aliyun.calls) == 1


# ------------------------------------------------------------------ the pushes' token


async def test_a_push_without_the_token_reaches_nothing(aliyun):
    from api.app import create_app

    [out] = await deliver([sms(1)])
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(temporal_client=None)),
                                 base_url="http://yingji.test") as http:
        for token in ("wrong", ""):
            r = await aliyun.sms_report(http, out.provider_id, success=False, err_code="MK:0001", token=token or None) \
                if token else await http.post("/api/webhooks/aliyun/sms/report", json=[{"out_id": str(out.outbox_id)}])
            assert r.status_code == 403, r.text
        bad = await http.post(aliyun.url("sms/report"), content=b"not json")
        assert bad.status_code == 422 and bad.json()["detail"].startswith("推送内容不是 JSON")
    assert rows()["a/1/sms"].status == "sent"


# ------------------------------------------------------------------ definitions check


def test_definitions_check_names_every_kind_without_a_template_code(monkeypatch, definitions):
    from cli.main import app

    monkeypatch.setenv("YINGJI_GATEWAY_SMS", "aliyun")
    monkeypatch.setenv("YINGJI_GATEWAY_VOICE", "simulator")
    monkeypatch.delenv("YINGJI_DEFINITIONS_DIR", raising=False)
    get_settings.cache_clear()
    try:
        shipped = CliRunner().invoke(app, ["definitions", "check"])
        assert shipped.exit_code == 1
        lines = [ln for ln in shipped.output.splitlines() if "aliyun.yaml:" in ln]
        assert len(lines) == 7 and all("has no template_code" in ln for ln in lines)
        assert "gateways/aliyun.yaml:10: sms.callout.notify:" in lines[0]
        assert not any("voice." in ln for ln in lines)  # voice is not Aliyun's here
        approved = CliRunner().invoke(app, ["definitions", "check", definitions])
        assert approved.exit_code == 0, approved.output
        monkeypatch.setenv("YINGJI_GATEWAY_SMS", "twilio")
        get_settings.cache_clear()
        assert CliRunner().invoke(app, ["definitions", "check"]).exit_code == 0
    finally:
        get_settings.cache_clear()


def test_a_template_filled_from_a_value_the_kind_lacks_is_refused(tmp_path):
    from definitions.loader import load_library
    from tests.fakes.aliyun_server import approved_definitions as copy

    root = copy(tmp_path / "d")
    path = f"{root}/gateways/aliyun.yaml"
    doc = yaml.safe_load(open(path, encoding="utf-8"))
    doc["sms"]["login.code"]["params"]["code"] = "headline"
    open(path, "w", encoding="utf-8").write(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False))
    errors = [str(e) for e in load_library(root).errors]
    assert len(errors) == 1 and "login.code has no value 'headline'" in errors[0] and "aliyun.yaml:" in errors[0]


# ------------------------------------------------------------------ per-channel choice, secrets, rates


def test_each_channel_has_its_provider_and_gateway_stays_the_default(monkeypatch):
    from config import Settings

    for name in ("GATEWAY", "GATEWAY_SMS", "GATEWAY_VOICE", "GATEWAY_IM", "IM_WEBHOOK_URL"):
        monkeypatch.delenv(f"YINGJI_{name}", raising=False)
    monkeypatch.setenv("YINGJI_GATEWAY", "twilio")
    s = Settings()
    assert (s.sms_gateway, s.voice_gateway, s.im_gateway) == ("twilio", "twilio", "simulator")
    monkeypatch.setenv("YINGJI_GATEWAY_SMS", "aliyun")
    monkeypatch.setenv("YINGJI_IM_WEBHOOK_URL", "https://oapi.dingtalk.com/robot/send?access_token=x")
    s = Settings()
    assert (s.sms_gateway, s.voice_gateway, s.im_gateway) == ("aliyun", "twilio", "robot")
    monkeypatch.setenv("YINGJI_GATEWAY_IM", "simulator")
    assert Settings().im_gateway == "simulator"
    monkeypatch.setenv("YINGJI_GATEWAY_SMS", "tencent")
    with pytest.raises(ValueError, match="gateway_sms"):
        Settings()


def test_aliyun_secrets_are_masked(monkeypatch):
    from config import Settings

    monkeypatch.setenv("YINGJI_ALIYUN_ACCESS_KEY_SECRET", "very-secret-key")
    monkeypatch.setenv("YINGJI_ALIYUN_CALLBACK_TOKEN", "push-token-value")
    monkeypatch.setenv("YINGJI_DINGTALK_APP_SECRET", "dingtalk-secret")
    shown = Settings().masked()
    assert shown["aliyun_access_key_secret"] == shown["aliyun_callback_token"] == shown["dingtalk_app_secret"] == "********"
    assert "dingtalk-secret" not in str(shown)
    assert "very-secret-key" not in repr(Settings()) and "push-token-value" not in str(shown)


async def test_the_aliyun_account_has_its_own_rate(aliyun, monkeypatch):
    from activities.delivery import gate_for, rate_limit, reset_gates

    assert rate_limit("sms", gateway_for("sms")) == 50.0  # RATE_SMS_PER_S
    monkeypatch.setenv("YINGJI_ALIYUN_RATE_SMS_PER_S", "3")
    get_settings.cache_clear()
    reset_gateways()
    reset_gates()
    gate = gate_for(gateway_for("sms"), "sms")
    assert gate.rate == 3.0 and gate.key == f"aliyun:{aliyun.access_key_id}:sms"


async def test_the_login_code_goes_as_its_own_template_and_logs_in(aliyun):
    from api.console.auth import send_code, verify_code
    from tests.factories import small_district

    with session_scope() as s:
        people = small_district(s)
        mobile = s.get(Person, people["duty_chief"]).mobile
    settings = get_settings()
    assert await send_code(settings, mobile, "browser-1")
    [msg] = aliyun.messages.values()
    assert msg["template_code"] == TEMPLATE_CODES["login.code"] and set(msg["params"]) == {"code"}
    code = msg["params"]["code"]
    assert len(code) == 6 and code.isdigit()
    with session_scope(write=False) as s:
        row = s.exec(select(OutboxMessage).where(OutboxMessage.subject == "console-login")).one()
    assert row.status == "sent" and row.provider_id == msg["biz_id"] and code not in row.body  # masked in the outbox
    assert verify_code(settings, mobile, code, "browser-1")["p"] == people["duty_chief"]


async def test_aliyun_unreachable_is_a_failure_that_quotes_neither_number_nor_text(aliyun, monkeypatch):
    from tests.helpers import free_port

    monkeypatch.setenv("YINGJI_ALIYUN_SMS_ENDPOINT", f"127.0.0.1:{free_port()}")  # nothing listens there
    get_settings.cache_clear()
    reset_gateways()
    [out] = await deliver([sms(1)])
    assert out.status == "failed" and out.error == "Aliyun unreachable: connection refused"
    assert rows()["a/1/sms"].error == out.error
