"""The 六问 voice menu on a Twilio call: signed callbacks, one question per <Gather>, the keys become answers."""
from __future__ import annotations

import re
from urllib.parse import urlencode

import httpx
import pytest
from twilio.request_validator import RequestValidator

from config import get_settings
from store.db import session_scope
from store.duty import SpotCheck
from store.messages import OutboxMessage
from tests.workflows.duty_helpers import duty_settings

TOKEN = "ivr-test-auth-token"
PUBLIC = "https://yingji.example.gov.cn"


@pytest.fixture
def call(db_url, monkeypatch) -> int:
    monkeypatch.setenv("YINGJI_TWILIO_AUTH_TOKEN", TOKEN)
    monkeypatch.setenv("YINGJI_PUBLIC_BASE_URL", PUBLIC)
    monkeypatch.setenv("YINGJI_RUN_SCHEDULER", "false")
    get_settings.cache_clear()
    questions = [q.model_dump() for q in duty_settings().spotcheck.questions]
    with session_scope() as s:
        s.add(SpotCheck(id="spotcheck-C1", callout_id="C1", title="暴雨橙色预警叫应", questions=questions))
        msg = OutboxMessage(idempotency_key="k1", gateway="twilio", channel="voice", to="+8613900000001",
                            person_id="p-v1", subject="spotcheck-C1", workflow_id="spotcheck-C1", body="六问抽查",
                            status="sent", provider_id="CA123",
                            meta={"procedure": "spotcheck", "purpose": "notify", "voice_text": "这里是区应急管理局值班室,六问抽查。"})
        s.add(msg)
        s.flush()
        return msg.id


async def post(web: httpx.AsyncClient, url: str, form: dict) -> httpx.Response:
    sig = RequestValidator(TOKEN).compute_signature(url, form)
    path = url.removeprefix(PUBLIC)
    return await web.post(path, data=form, headers={"X-Twilio-Signature": sig})


async def test_six_questions_one_key_each_become_the_answers(call, monkeypatch):
    from api.app import create_app
    from api.services.duty import spotchecks as svc  # record_keys calls spotcheck_answer there
    from workflows.spotcheck import PersonView, SpotCheckView

    got = []

    async def answer(_client, check_id, req):
        got.append((check_id, req))
        view = SpotCheckView(check_id=check_id, callout_id="C1", persons=[
            PersonView(person_id=req.person_id, name="x", label="x", answers=req.answers)])
        return {**view.model_dump(mode="json"), "recorded": "taken"}

    monkeypatch.setattr(svc, "spotcheck_answer", answer)
    app = create_app(temporal_client=object())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=PUBLIC) as web:
        # the call's TwiML hands a spot-check call to the menu
        r = await post(web, f"{PUBLIC}/api/webhooks/twilio/voice/twiml?o={call}", {"CallSid": "CA123"})
        assert r.status_code == 200 and "/api/webhooks/twilio/spotcheck/twiml" in r.text and "<Redirect" in r.text
        url = re.search(r"<Redirect[^>]*>([^<]+)</Redirect>", r.text).group(1).replace("&amp;", "&")
        r = await post(web, url, {"CallSid": "CA123"})
        assert "六问抽查" in r.text and "第1问:预警信息收到了吗?" in r.text
        unsigned = await web.post(url.removeprefix(PUBLIC), data={"CallSid": "CA123"})
        assert unsigned.status_code == 403, "no signature, no menu"
        keys = "112121"
        for n, key in enumerate(keys):
            action = re.search(r'<Gather action="([^"]+)"', r.text).group(1).replace("&amp;", "&")
            if n == 2:  # 9: the question again, nothing recorded
                r = await post(web, action, {"CallSid": "CA123", "Digits": "9"})
                assert "第3问" in r.text
                action = re.search(r'<Gather action="([^"]+)"', r.text).group(1).replace("&amp;", "&")
            r = await post(web, action, {"CallSid": "CA123", "Digits": key})
            if n + 1 < len(keys):
                assert f"第{n + 2}问" in r.text
        assert "您的回答已记录" in r.text and "<Hangup" in r.text
    assert len(got) == 1
    check_id, req = got[0]
    assert check_id == "spotcheck-C1" and req.person_id == "p-v1" and req.channel == "voice" and req.ref == "ivr:CA123"
    assert req.answers == {"received": True, "on_duty": True, "patrolled": False, "evacuation": True,
                           "supplies": False, "arrangements": True}


async def test_another_calls_sid_is_not_this_menu(call):
    from api.app import create_app

    app = create_app(temporal_client=object())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=PUBLIC) as web:
        url = f"{PUBLIC}/api/webhooks/twilio/spotcheck/twiml?{urlencode({'o': call})}"
        r = await post(web, url, {"CallSid": "CA-other"})
        assert r.status_code == 404
