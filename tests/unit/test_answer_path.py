"""The SMS reply webhook is served by `api.answer_path.AnswerPath`, inside `SecurityMiddleware` and before FastAPI's
routing: the route's own ASGI app is never reached for a POST, and what the caller gets is what the route gave —
the signature checked, the reply handed to the intake, TwiML back, refusals answered by the app's handlers (403,
415, 503 with Retry-After), the security headers on every answer; other methods still meet FastAPI (405)."""
from __future__ import annotations

from types import SimpleNamespace

import pytest
from sqlalchemy.exc import OperationalError

from api.services.answers.intake import IntakeRefused
from tests.security.asgi import call

PATH = "/api/webhooks/twilio/sms"
BASE = "https://yingji.test"
TOKEN = "answer-path-token"
REPLY = {"MessageSid": "SMpath1", "SmsSid": "SMpath1", "From": "+8613800000001", "To": "+15005550006", "Body": "1"}


@pytest.fixture
def app(db_url, monkeypatch):
    from api.app import create_app
    from config import get_settings

    monkeypatch.setenv("YINGJI_TWILIO_AUTH_TOKEN", TOKEN)
    monkeypatch.setenv("YINGJI_PUBLIC_BASE_URL", BASE)
    monkeypatch.setenv("YINGJI_RUN_SCHEDULER", "false")
    get_settings.cache_clear()
    from api.routes.webhooks import router

    app = create_app(temporal_client=object())
    [route] = [r for r in router.routes if getattr(r, "path", None) == PATH and "POST" in r.methods]
    reached: list[str] = []
    handle = route.handle

    async def fastapi_route(scope, receive, send):  # FastAPI's route, as its routing calls it
        reached.append(scope["method"])
        await handle(scope, receive, send)

    monkeypatch.setattr(route, "handle", fastapi_route)
    answers: list[tuple[str, dict]] = []
    outcome = SimpleNamespace(value=None, error=None)

    async def answer(kind, payload, at=None):
        if outcome.error is not None:
            raise outcome.error
        answers.append((kind, payload))
        return outcome.value

    app.state.intake.answer = answer
    yield SimpleNamespace(app=app, reached=reached, answers=answers, outcome=outcome)
    get_settings.cache_clear()


def signed(params: dict) -> dict[str, str]:
    from twilio.request_validator import RequestValidator

    return {"X-Twilio-Signature": RequestValidator(TOKEN).compute_signature(BASE + PATH, params)}


async def test_a_signed_reply_goes_to_the_intake_and_gets_twiml_without_fastapis_route(app):
    got = await call(app.app, "POST", PATH, form=REPLY, headers=signed(REPLY))
    assert got.status == 200, got.text
    assert got.headers["content-type"].startswith("application/xml") and got.text.startswith("<?xml")
    assert "<Message>" not in got.text  # nothing to tell the person: an empty TwiML answer
    assert got.headers["x-content-type-options"] == "nosniff" and got.headers["cache-control"] == "no-store"
    assert app.answers == [("sms", {"gateway": "twilio", "from": "+8613800000001", "body": "1", "provider_id": "SMpath1"})]
    assert app.reached == []


async def test_a_late_reply_is_told_what_became_of_it(app):
    app.outcome.value = {"recorded": "late", "message": "已记录(逾时应答)"}
    got = await call(app.app, "POST", PATH, form=REPLY, headers=signed(REPLY))
    assert got.status == 200 and "<Message>已记录(逾时应答)</Message>" in got.text


async def test_refusals_are_the_apps_own_answers(app):
    forged = await call(app.app, "POST", PATH, form=REPLY, headers={"X-Twilio-Signature": "forged="})
    assert forged.status == 403 and forged.json() == {"detail": "invalid or missing X-Twilio-Signature"}
    assert forged.headers["x-content-type-options"] == "nosniff"
    as_json = await call(app.app, "POST", PATH, json=REPLY, headers=signed(REPLY))
    assert as_json.status == 415 and "application/json" in as_json.json()["detail"]
    assert app.answers == []

    app.outcome.error = IntakeRefused("40000 answers are waiting to be stored")
    full = await call(app.app, "POST", PATH, form=REPLY, headers=signed(REPLY))
    assert full.status == 503 and full.headers["retry-after"] == "5" and "40000 answers" in full.json()["detail"]
    app.outcome.error = OperationalError("INSERT …", {}, Exception("database is locked"))
    busy = await call(app.app, "POST", PATH, form=REPLY, headers=signed(REPLY))
    assert busy.status == 503 and busy.headers["retry-after"] == "5" and "数据库繁忙" in busy.json()["detail"]
    assert app.reached == []


async def test_other_methods_still_meet_fastapi(app):
    got = await call(app.app, "GET", PATH)
    assert got.status == 405 and got.headers["allow"] == "POST"
    assert app.reached == ["GET"]  # FastAPI's route answered it (and is watched: the POSTs above never got there)
