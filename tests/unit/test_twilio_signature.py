"""X-Twilio-Signature: Twilio's published test vectors, our check of the URL as Twilio saw it
(public base URL, not the Host header), token rotation, and 403s that reach no workflow."""
from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import parse_qsl

import httpx
import pytest
from pydantic import SecretStr
from sqlmodel import select
from starlette.requests import Request
from twilio.request_validator import RequestValidator

from api.app import create_app
from api.routes.webhooks import Params, public_url, signature_ok
from config import get_settings
from store.db import session_scope
from store.messages import InboundMessage

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "twilio"
VECTORS = json.loads((FIXTURES / "request_validator_test_vectors.json").read_text())
GATHER = json.loads((FIXTURES / "voice_gather_callback_example.json").read_text())
INBOUND = json.loads((FIXTURES / "inbound_sms_webhook_example.json").read_text())
TOKEN = VECTORS["auth_token"]
PUBLIC = "https://yingji.example.gov.cn"
ROUTES = ["/api/webhooks/twilio/sms", "/api/webhooks/twilio/sms/status", "/api/webhooks/twilio/voice/twiml",
          "/api/webhooks/twilio/voice/gather", "/api/webhooks/twilio/voice/status"]


def vector_params(v: dict):
    if "params_multi" in v:
        return Params([tuple(p) for p in v["params_multi"]])
    return VECTORS["params"] if v.get("params") == "params" else None


def settings(current: str | None = TOKEN, previous: str | None = None):
    return SimpleNamespace(twilio_auth_token=SecretStr(current) if current else None,
                           twilio_previous_auth_token=SecretStr(previous) if previous else None, base_url=PUBLIC)


# ------------------------------------------------------------------ the published vectors


@pytest.mark.parametrize("v", [v for v in VECTORS["vectors"] if "expected_signature" in v], ids=lambda v: v["name"])
def test_published_vectors_compute(v):
    assert RequestValidator(TOKEN).compute_signature(v["url"], vector_params(v)) == v["expected_signature"]


def test_duplicate_params_from_query_string():
    v = next(v for v in VECTORS["vectors"] if "params_querystring" in v)
    params = Params(parse_qsl(v["params_querystring"]))
    assert RequestValidator(TOKEN).compute_signature(v["url"], params) == v["expected_signature"]


@pytest.mark.parametrize("v", [v for v in VECTORS["vectors"] if "signature" in v], ids=lambda v: v["name"])
def test_published_vectors_validate_through_our_check(v):
    params = v["body"] if "body" in v else vector_params(v)
    assert signature_ok(settings(), v["url"], params, v["signature"]) is v["valid"]


def test_body_hash_vector():
    v = next(v for v in VECTORS["vectors"] if "expected_body_sha256_hex" in v)
    assert RequestValidator(TOKEN).compute_hash(v["body"]) == v["expected_body_sha256_hex"]


def test_twilio_docs_classic_vector():
    c = VECTORS["secondary_vector_twilio_docs_classic"]
    assert RequestValidator(c["auth_token"]).compute_signature(c["url"], c["params"]) == c["expected_signature"]
    assert signature_ok(settings(c["auth_token"]), c["url"], c["params"], c["expected_signature"])


def test_gather_callback_example():
    assert signature_ok(settings(GATHER["auth_token"]), GATHER["url"], GATHER["params"], GATHER["X-Twilio-Signature"])
    dup = GATHER["duplicate_digits_variant"]
    assert signature_ok(settings(GATHER["auth_token"]), GATHER["url"], Params([tuple(p) for p in dup["params_multi"]]),
                        dup["X-Twilio-Signature"])


# ------------------------------------------------------------------ our check: tampering, wrong URL, rotation

URL, PARAMS, SIG = VECTORS["uri"], VECTORS["params"], VECTORS["vectors"][0]["expected_signature"]


def test_tampered_params_fail():
    assert signature_ok(settings(), URL, PARAMS, SIG)
    assert not signature_ok(settings(), URL, {**PARAMS, "Digits": "1"}, SIG)
    assert not signature_ok(settings(), URL, {k: v for k, v in PARAMS.items() if k != "Caller"}, SIG)
    assert not signature_ok(settings(), URL, PARAMS, SIG.replace("R", "r", 1))
    assert not signature_ok(settings(), URL, PARAMS, "")


def test_a_form_signed_over_the_url_as_given_costs_one_hmac(monkeypatch):
    """The common case (Twilio signed the URL it was given) computes one signature; the SDK's `validate`, which
    computes it with and without the port, is the fallback — for a signature over the other form of the URL."""
    computed: list[str] = []
    compute = RequestValidator.compute_signature

    def counting(self, uri, params, algorithm=None):
        computed.append(uri)
        return compute(self, uri, params, algorithm)

    monkeypatch.setattr(RequestValidator, "compute_signature", counting)
    assert signature_ok(settings(), URL, PARAMS, SIG) and computed == [URL]
    computed.clear()
    with_port = URL.replace("mycompany.com", "mycompany.com:443")
    assert signature_ok(settings(), with_port, PARAMS, SIG) and len(computed) == 3  # as given, then both forms


@pytest.mark.parametrize("url", ["http://mycompany.com/myapp.php?foo=1&bar=2",      # scheme as the proxy saw it
                                 "https://internal:8000/myapp.php?foo=1&bar=2",      # Host header behind a proxy
                                 "https://mycompany.com/other.php?foo=1&bar=2",      # path
                                 "https://mycompany.com/myapp.php?foo=1",            # query cut short
                                 "https://mycompany.com/myapp.php?foo=1&bar=3"])
def test_wrong_url_fails(url):
    assert not signature_ok(settings(), url, PARAMS, SIG)


def test_rotation_accepts_current_and_previous_token_only():
    assert signature_ok(settings(current="the-new-token", previous=TOKEN), URL, PARAMS, SIG)  # old one, still accepted
    assert signature_ok(settings(current=TOKEN, previous="an-older-token"), URL, PARAMS, SIG)
    assert not signature_ok(settings(current="the-new-token"), URL, PARAMS, SIG)  # rotation finished: old one refused
    assert not signature_ok(settings(current=None), URL, PARAMS, SIG)  # no token configured: nothing is valid


def test_public_url_ignores_the_host_header():
    scope = {"type": "http", "method": "POST", "path": "/api/webhooks/twilio/sms/status", "raw_path": b"",
             "query_string": b"o=17&n=0", "root_path": "", "scheme": "http", "server": ("10.0.0.5", 8000),
             "headers": [(b"host", b"10.0.0.5:8000"), (b"x-forwarded-host", b"evil.example")]}
    assert public_url(settings(), Request(scope)) == f"{PUBLIC}/api/webhooks/twilio/sms/status?o=17&n=0"


# ------------------------------------------------------------------ through the app


class NoTemporal:
    """Stands in for the Temporal client: records any attempt to reach a workflow."""

    def __init__(self) -> None:
        self.handles: list[str] = []

    def get_workflow_handle(self, workflow_id: str):
        self.handles.append(workflow_id)
        raise AssertionError("a webhook reached a workflow")


@pytest.fixture
async def app_client(db_url, monkeypatch):
    monkeypatch.setenv("YINGJI_RUN_SCHEDULER", "false")
    monkeypatch.setenv("YINGJI_PUBLIC_BASE_URL", PUBLIC)
    monkeypatch.setenv("YINGJI_TWILIO_AUTH_TOKEN", "current-token")
    monkeypatch.setenv("YINGJI_TWILIO_PREVIOUS_AUTH_TOKEN", "previous-token")
    get_settings.cache_clear()
    temporal = NoTemporal()
    app = create_app(temporal_client=temporal)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://10.0.0.5:8000") as client:
        client.temporal = temporal  # type: ignore[attr-defined]
        yield client
    get_settings.cache_clear()


def signed(url: str, body: str, token: str) -> dict:
    return {"X-Twilio-Signature": RequestValidator(token).compute_signature(url, Params(parse_qsl(body))),
            "Content-Type": INBOUND["content_type"]}


@pytest.mark.parametrize("path", ROUTES)
async def test_missing_or_forged_signature_is_403(app_client, path):
    body = "CallSid=CA1&MessageSid=SM1&Digits=1&CallStatus=completed&MessageStatus=delivered&From=%2B1&Body=1"
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    for extra in ({}, {"X-Twilio-Signature": "forged"},
                  signed(f"{PUBLIC}{path}", body, "not-our-token"),
                  signed(f"http://10.0.0.5:8000{path}", body, "current-token")):  # the URL the proxy passed on
        resp = await app_client.post(path, content=body, headers={**headers, **extra})
        assert resp.status_code == 403, (path, extra, resp.text)
        assert resp.headers["content-type"].startswith("application/json")
        assert "X-Twilio-Signature" in resp.json()["detail"]
    assert app_client.temporal.handles == []


async def test_tampered_body_is_403(app_client):
    path = "/api/webhooks/twilio/voice/gather?o=1"
    headers = signed(f"{PUBLIC}{path}", "CallSid=CA1&Digits=2", "current-token")
    resp = await app_client.post(path, content="CallSid=CA1&Digits=1", headers=headers)
    assert resp.status_code == 403


async def test_query_is_part_of_the_signed_url(app_client):
    body = "CallSid=CA1&Digits=1"
    headers = signed(f"{PUBLIC}/api/webhooks/twilio/voice/gather?o=1", body, "current-token")
    resp = await app_client.post("/api/webhooks/twilio/voice/gather?o=2", content=body, headers=headers)
    assert resp.status_code == 403


@pytest.mark.parametrize("token", ["current-token", "previous-token"])
async def test_real_inbound_sms_body_signed_with_either_token_is_accepted(app_client, token):
    path = "/api/webhooks/twilio/sms"
    raw = INBOUND["raw_body"]
    resp = await app_client.post(path, content=raw, headers=signed(f"{PUBLIC}{path}", raw, token))
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"].startswith("application/xml") and "<Response" in resp.text
    with session_scope(write=False) as s:
        got = list(s.exec(select(InboundMessage)))
    assert [(m.from_number, m.body, m.handled) for m in got] == [("+16505558893", "hi there, 2+3=4", "unmatched")]
    assert app_client.temporal.handles == []  # an unmatched reply wakes no workflow
