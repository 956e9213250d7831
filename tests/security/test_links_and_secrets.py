"""Acknowledgement links (signed, one person, one call-out, expiring, once), replayed webhooks,
tokens stored hashed, and no phone number, token, link or secret in the logs or the audit trail."""
from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest
from sqlmodel import select

from store.audit import AuditEvent
from store.callouts import CalloutTarget
from store.db import session_scope
from store.directory import Person
from store.messages import OutboxMessage
from tests.helpers import CAP, free_port, poll
from tests.security.asgi import call
from tests.security.conftest import ADMIN_TOKEN

ROOT = Path(__file__).resolve().parents[2]
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


async def start_callout(app) -> str:
    got = await call(app, "POST", "/api/warnings", headers={**ADMIN, "content-type": "application/cap+xml"},
                     content=CAP.format(ident=f"sec-{uuid.uuid4().hex[:8]}").encode())
    assert got.status == 201, got.text
    return got.json()["callout_id"]


def sms_rows(cid: str) -> list[OutboxMessage]:
    with session_scope(write=False) as s:
        return list(s.exec(select(OutboxMessage).where(OutboxMessage.subject == cid, OutboxMessage.channel == "sms",
                                                       OutboxMessage.status == "sent")))


async def first_link(cid: str) -> OutboxMessage:
    async def rows():
        return [m for m in sms_rows(cid) if m.ack_url]

    return (await poll(rows, bool, timeout=30, what="an SMS with a link"))[0]


def target(cid: str, person_id: str) -> CalloutTarget:
    with session_scope(write=False) as s:
        return s.exec(select(CalloutTarget).where(CalloutTarget.callout_id == cid,
                                                  CalloutTarget.person_id == person_id)).one()


def acks(cid: str) -> list[AuditEvent]:
    with session_scope(write=False) as s:
        return list(s.exec(select(AuditEvent).where(AuditEvent.subject == cid, AuditEvent.kind == "callout.ack")))


def past_token(key: str, subject: str, person_id: str, hours: float) -> str:
    """A link signed `hours` ago."""
    from itsdangerous import TimestampSigner, URLSafeTimedSerializer

    from store.links import SALT

    class Then(TimestampSigner):
        def get_timestamp(self) -> int:
            return int(time.time() - hours * 3600)

    return URLSafeTimedSerializer(key, salt=SALT, signer=Then).dumps({"s": subject, "p": person_id, "j": "old"})


# ------------------------------------------------------------------ acknowledgement links


async def test_ack_link_works_once_for_its_person_and_is_refused_tampered_or_expired(secured):
    cid = await start_callout(secured.app)
    msg = await first_link(cid)
    path = "/ack/" + msg.ack_url.rsplit("/ack/", 1)[1]
    token = path.removeprefix("/ack/")

    page = await call(secured.app, "GET", path)
    assert page.status == 200 and "确认收到" in page.text

    payload, ts, sig = token.split(".")
    for forged in (f"{payload[:-2]}{'AB' if not payload.endswith('AB') else 'CD'}.{ts}.{sig}",  # another person/call-out
                   f"{payload}.{ts}.{sig[:-3]}xyz", token[:20], f"{token}x"):
        got = await call(secured.app, "POST", f"/ack/{forged}")
        assert got.status == 403 and "确认链接无效" in got.text, forged

    expired = past_token(secured.settings.signing_key(), cid, msg.person_id, hours=49)
    got = await call(secured.app, "POST", f"/ack/{expired}")
    assert got.status == 410 and "已过期" in got.text
    fresh_enough = past_token(secured.settings.signing_key(), cid, msg.person_id, hours=47)
    assert (await call(secured.app, "GET", f"/ack/{fresh_enough}")).status == 200
    other_key = past_token("someone-elses-key", cid, msg.person_id, hours=0)
    assert (await call(secured.app, "POST", f"/ack/{other_key}")).status == 403
    assert target(cid, msg.person_id).state != "acknowledged" and acks(cid) == []

    first, second = await asyncio.gather(call(secured.app, "POST", path), call(secured.app, "POST", path))
    assert sorted([first.status, second.status]) == [200, 409], (first.status, second.status)
    again = await call(secured.app, "POST", path)
    assert again.status == 409 and "已使用" in again.text
    assert (await call(secured.app, "GET", path)).status == 409  # the page says so too
    await poll(lambda: asyncio.sleep(0, target(cid, msg.person_id)), lambda t: t.state == "acknowledged",
               what="the link's acknowledgement")
    assert [(e.payload["person_id"], e.channel) for e in acks(cid)] == [(msg.person_id, "link")]


async def test_links_are_hidden_from_staff_whatever_the_gateway(secured, monkeypatch):
    from config import get_settings

    cid = await start_callout(secured.app)
    msg = await first_link(cid)
    token = msg.ack_url.rsplit("/ack/", 1)[1]
    shown = await call(secured.app, "GET", f"/api/outbox?subject={cid}", headers=ADMIN)
    assert token not in shown.text  # the simulator too: only the person's own "my phone" shows it (issue 16.1)
    monkeypatch.setenv("YINGJI_GATEWAY", "twilio")
    get_settings.cache_clear()
    for role in ("admin", "duty_chief", "commander", "supervisor"):
        listed = await call(secured.app, "GET", f"/api/outbox?subject={cid}",
                            headers={"Authorization": f"Bearer {secured.tokens[role]}"})
        assert listed.status == 200 and token not in listed.text and "/ack/********" in listed.text, role
    with session_scope(write=False) as s:
        tid = s.exec(select(CalloutTarget.id).where(CalloutTarget.callout_id == cid,
                                                    CalloutTarget.person_id == msg.person_id)).one()
    page = await call(secured.app, "GET", f"/console/callouts/{cid}/targets/{tid}",
                      headers={"cookie": secured.sessions["duty_chief"]["cookie"]})
    alias = msg.body.rsplit("/a/", 1)[1][:12]  # the text carries the signed link's short alias: masked too
    assert page.status == 200 and token not in page.text and alias not in page.text and "/a/********" in page.text


async def test_a_replayed_signed_webhook_is_recorded_once(secured, monkeypatch):
    from twilio.request_validator import RequestValidator

    from config import get_settings
    from store.messages import InboundMessage

    monkeypatch.setenv("YINGJI_TWILIO_AUTH_TOKEN", "replay-token")
    monkeypatch.setenv("YINGJI_PUBLIC_BASE_URL", "https://yingji.test")
    get_settings.cache_clear()
    form = {"MessageSid": "SMreplay1", "From": "+8613900000001", "To": "+15005550006", "Body": "1"}
    sig = RequestValidator("replay-token").compute_signature("https://yingji.test/api/webhooks/twilio/sms", form)
    answers = [await call(secured.app, "POST", "/api/webhooks/twilio/sms", form=form,
                          headers={"X-Twilio-Signature": sig}) for _ in range(3)]
    assert [a.status for a in answers] == [200, 200, 200]
    with session_scope(write=False) as s:
        assert len(list(s.exec(select(InboundMessage).where(InboundMessage.provider_id == "SMreplay1")))) == 1
    moved = await call(secured.app, "POST", "/api/webhooks/twilio/sms/status", form=form, headers={"X-Twilio-Signature": sig})
    assert moved.status == 403  # a signature is for its URL only


# ------------------------------------------------------------------ secrets at rest


def _database_bytes(db_url: str) -> bytes:
    path = Path(db_url.split("///", 1)[1])
    return b"".join(p.read_bytes() for p in (path, Path(f"{path}-wal")) if p.exists())


async def test_tokens_are_stored_only_as_hashes(secured, db_url):
    from store.auth import ApiToken

    with session_scope(write=False) as s:
        rows = {r.role: r for r in s.exec(select(ApiToken))}
    raw = _database_bytes(db_url)
    for role, token in secured.tokens.items():
        assert rows[role].token_hash == hashlib.sha256(token.encode()).hexdigest()
        assert token.encode() not in raw and token[3:].encode() not in raw, f"{role}'s token is stored readable"
    assert ADMIN_TOKEN.encode() not in raw and secured.settings.signing_key().encode() not in raw


# ------------------------------------------------------------------ the audit trail


async def test_a_gateway_error_quoting_the_number_reaches_the_audit_trail_masked(secured, monkeypatch):
    from tests.fakes.twilio_server import FakeTwilio, use_fake_twilio

    with FakeTwilio() as fake:
        use_fake_twilio(monkeypatch, fake)
        fake.fail_next(50, 21211, kind="sms")
        cid = await start_callout(secured.app)

        async def failed():
            with session_scope(write=False) as s:
                return list(s.exec(select(AuditEvent).where(AuditEvent.subject == cid, AuditEvent.kind == "callout.sent")))

        sent = await poll(failed, lambda evs: any(e.payload.get("error") for e in evs), timeout=30,
                          what="a refused send in the audit trail")
    errors = [e.payload["error"] for e in sent if e.payload.get("error")]
    assert all("21211" in e and "is not a valid phone number" in e and "****" in e for e in errors), errors
    with session_scope(write=False) as s:
        mobiles = [p.mobile for p in s.exec(select(Person)) if p.mobile]
        trail = json.dumps([e.payload for e in s.exec(select(AuditEvent))], ensure_ascii=False)
    leaked = [m for m in mobiles if m in trail or m[3:] in trail]
    assert not leaked, f"phone numbers in audit payloads: {leaked[:3]}"


# ------------------------------------------------------------------ the logs of a real API process


@pytest.fixture
def api_process(secured, db_url, tmp_path):
    port = free_port()
    log = tmp_path / "api.log"
    env = {**os.environ, "YINGJI_DATABASE_URL": db_url, "YINGJI_ADMIN_TOKEN": ADMIN_TOKEN,
           "YINGJI_SECRET_KEY": secured.settings.signing_key(), "YINGJI_RUN_SCHEDULER": "false",
           "YINGJI_TASK_QUEUE": secured.settings.task_queue, "YINGJI_DATA_DIR": str(tmp_path / "data"),
           "YINGJI_TEMPORAL_ADDRESS": secured.client.service_client.config.target_host,
           "YINGJI_TWILIO_AUTH_TOKEN": "twilio-secret-in-env", "NO_COLOR": "1"}
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "cli.main", "api", "--port", str(port), "--log-level", "debug"],
                                cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            httpx.get(base + "/healthz", timeout=2)
            break
        except httpx.HTTPError:
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()[-2000:]
            time.sleep(0.2)
    yield base, log
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


async def test_logs_show_no_phone_number_token_link_or_secret(secured, api_process):
    base, log = api_process
    with session_scope(write=False) as s:
        mobiles = [p.mobile for p in s.exec(select(Person)) if p.mobile]
        chief = s.get(Person, secured.people["duty_chief"]).mobile
    async with httpx.AsyncClient(base_url=base, headers=ADMIN, timeout=30) as c:
        r = await c.post("/api/warnings", content=CAP.format(ident=f"log-{uuid.uuid4().hex[:6]}"),
                         headers={"content-type": "application/cap+xml"})
        cid = r.json()["callout_id"]
        await c.get("/api/outbox", params={"to": mobiles[0]})
        await c.get("/api/directory/persons")
        await c.get("/api/callouts", headers={"Authorization": f"Bearer {secured.tokens['commander']}x"})
        await c.get("/api/callouts", headers={"Authorization": "Bearer yj_not_a_real_token_at_all"})
        await c.post("/api/webhooks/twilio/sms", data={"From": mobiles[1], "Body": "1"})
        msg = await first_link(cid)
        link_path = "/ack/" + msg.ack_url.rsplit("/ack/", 1)[1]
        assert (await c.get(link_path)).status_code == 200
        assert (await c.post(link_path)).status_code == 200
    async with httpx.AsyncClient(base_url=base, timeout=30) as anon:
        page = await anon.get("/console/login")
        csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
        await anon.post("/console/login/code", data={"mobile": chief, "csrf": csrf})
        await anon.post("/console/login/verify", data={"mobile": chief, "code": "000000", "csrf": csrf})
        await anon.post("/console/login/token", data={"token": ADMIN_TOKEN, "csrf": csrf})
        await anon.get(f"/console/login?next=/console/desk%3Ftoken%3D{ADMIN_TOKEN}")
    await asyncio.sleep(0.5)
    text = log.read_text(errors="replace")
    assert "/ack/******** HTTP/1.1" in text and "GET /api/outbox?to=" in text, text[-3000:]  # the access log is here
    secrets = {"admin token": ADMIN_TOKEN, "signing key": secured.settings.signing_key(),
               "twilio token": "twilio-secret-in-env", "link": link_path.removeprefix("/ack/"),
               **{f"{role} token": tok for role, tok in secured.tokens.items()}}
    found = [name for name, value in secrets.items() if value in text]
    found += [m for m in mobiles if m in text or m.removeprefix("+86") in text or m.replace("+", "%2B") in text]
    assert not found, f"in the API's log: {found[:5]}"
