"""Issue 16 finding 15: a Twilio webhook whose body is not a form (JSON, empty, garbage) is refused
with a clear 4xx (415 for a body that is not a form, 403 for a form without a valid signature),
never a 500 with a traceback, whatever X-Twilio-Signature comes with it."""
from __future__ import annotations

import pytest

from tests.security.asgi import call
from tests.security.test_access_table import ACCESS, TWILIO

ROUTES = sorted(path for (method, path), rule in ACCESS.items() if rule.access == TWILIO)
BASE = "https://yingji.test"


@pytest.fixture
def twilio_token(monkeypatch):
    from config import get_settings

    monkeypatch.setenv("YINGJI_TWILIO_AUTH_TOKEN", "body-token")
    monkeypatch.setenv("YINGJI_PUBLIC_BASE_URL", BASE)
    get_settings.cache_clear()
    yield "body-token"
    get_settings.cache_clear()


def _signed(path: str, params: dict | str) -> str:
    from twilio.request_validator import RequestValidator

    try:
        return RequestValidator("body-token").compute_signature(BASE + path, params)
    except TypeError:  # the SDK's own answer to a body that is not a form: sign the URL alone
        return RequestValidator("body-token").compute_signature(BASE + path, {})


BODIES = {
    # what arrived, the content type it claimed; a form is checked for its signature, anything else is 415
    "json": (b'{"MessageSid": "SMjson", "Body": "1"}', "application/json"),
    "json-charset": (b'{"CallSid": "CAjson"}', "application/json; charset=utf-8"),
    "json-as-form": (b'{"MessageSid": "SMjson"}', "application/x-www-form-urlencoded"),
    "empty-form": (b"", "application/x-www-form-urlencoded"),
    "empty-no-type": (b"", None),
    "malformed-form": (b"%%%&&=&a=%zz&\xff\xfe=1&b", "application/x-www-form-urlencoded"),
    "xml": (b"<Response/>", "text/xml"),
    "multipart": (b"--x\r\n\r\n--x--", "multipart/form-data; boundary=x"),
}


async def test_a_webhook_body_that_is_not_a_signed_form_is_a_clear_4xx(secured, twilio_token):
    """Every Twilio route × every body × no, a forged, a URL-only and the right signature (one app: the
    fixture costs seconds, the 224 requests not)."""
    from urllib.parse import parse_qsl

    wrong: list[str] = []
    for path in ROUTES:
        for name, (body, ctype) in sorted(BODIES.items()):
            form = ctype is None or ctype.startswith("application/x-www-form-urlencoded")
            text = body.decode("utf-8", "replace")
            right = _signed(path, dict(parse_qsl(text, keep_blank_values=True)))
            for signature in ("", "forged=", _signed(path, text), right):
                headers = {"X-Twilio-Signature": signature} if signature else {}
                if ctype:
                    headers["content-type"] = ctype
                try:
                    got = await call(secured.app, "POST", path, headers=headers, content=body)
                except Exception as exc:  # noqa: BLE001 - the app raised: what a client sees as a reset connection
                    wrong.append(f"{name} to {path} (signature {signature[:8]!r}): raised {exc!r}")
                    continue
                what = f"{name} to {path} (signature {signature[:8]!r}): {got.status} {got.text[:120]}"
                if not form:
                    ok = got.status == 415 and bool(got.json().get("detail"))
                elif signature != right:
                    ok = got.status == 403 and bool(got.json().get("detail"))
                else:  # signed as Twilio signs: the route's own answer (TwiML, a 404 for an unknown call), not 5xx
                    ok = got.status < 500
                if not ok:
                    wrong.append(what)
    assert not wrong, "\n".join(wrong)


async def test_a_json_body_is_refused_with_a_message_that_says_what_twilio_sends(secured, twilio_token):
    path = "/api/webhooks/twilio/sms"
    got = await call(secured.app, "POST", path, json={"MessageSid": "SMj"},
                     headers={"X-Twilio-Signature": _signed(path, '{"MessageSid": "SMj"}')})
    assert got.status == 415
    assert "application/x-www-form-urlencoded" in got.json()["detail"]
