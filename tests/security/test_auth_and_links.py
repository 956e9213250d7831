"""Issue 16, findings 1, 5, 6, 10, 11 and 16, and slow request headers: what an insider with a token,
or an outsider on the same host, could do with login codes, one-time links, sessions and forwarded
addresses.

- 1, 6: login codes and one-time links (`/ack/`, `/confirm/`, `/spotcheck/`) are masked in every
  view of the outbox for every role and gateway; only the person a message went to sees it whole
  (with the simulator, the console's "my phone").
- 5, 6: signed links are limited per link (and per client only when the signature is not ours):
  a hundred persons behind one address all get through; one link hammered, or garbage, gets 429.
- 10: "send me a code" answers the same for any number; someone else's requests neither lock a
  person out nor spend their code.
- 11: logout ends a session server-side; an SMS session's role follows the duty roster.
- 16 and slow headers: the `yingji api` process itself (uvicorn as we run it).
"""
from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlmodel import select

from store.audit import AuditEvent
from store.db import session_scope
from store.directory import OrgUnit, Person, Post
from store.messages import OutboxMessage
from tests.helpers import CAP, free_port, poll
from tests.security.asgi import call
from tests.security.conftest import ADMIN_TOKEN

ROOT = Path(__file__).resolve().parents[2]
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
ROLES_SEEN = ("admin", "duty_staff", "duty_cadre", "duty_chief", "leading_leader", "commander", "supervisor")


def bearer(env, role: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {env.tokens[role]}"}


@pytest.fixture
def phones(monkeypatch):
    """What the simulator delivers, by number: the persons' own phones (nobody else reads them)."""
    from activities.gateways.simulator import SimulatorGateway

    got: dict[str, list[str]] = {}
    send = SimulatorGateway.send

    async def deliver(self, msg):
        got.setdefault(msg.to, []).append(msg.body)
        return await send(self, msg)

    monkeypatch.setattr(SimulatorGateway, "send", deliver)
    return got


def mobile_of(person_id: str) -> str:
    with session_scope(write=False) as s:
        return s.get(Person, person_id).mobile


def codes_in(texts: list[str]) -> list[str]:
    return [m for t in texts for m in re.findall(r"登录验证码 (\d{6})", t)]


async def login_form(c: httpx.AsyncClient) -> str:
    page = await c.get("/console/login")
    return re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)


def browser(app, client: str = "198.51.100.5") -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app, client=(client, 40000)), base_url="http://console.test")


async def start_callout(app) -> str:
    got = await call(app, "POST", "/api/warnings", headers={**ADMIN, "content-type": "application/cap+xml"},
                     content=CAP.format(ident=f"sec-{uuid.uuid4().hex[:8]}").encode())
    assert got.status == 201, got.text
    return got.json()["callout_id"]


def links_sent(cid: str) -> dict[str, str]:
    """person -> the path of their acknowledgement link, from the SMS sent (what their phone got)."""
    with session_scope(write=False) as s:
        rows = s.exec(select(OutboxMessage).where(OutboxMessage.subject == cid, OutboxMessage.channel == "sms",
                                                  OutboxMessage.status == "sent"))
        return {m.person_id: "/ack/" + m.ack_url.rsplit("/ack/", 1)[1] for m in rows if m.ack_url}


# ------------------------------------------------------------------ 1: the impersonation path


@pytest.mark.parametrize("gateway", ["simulator", "twilio"])
async def test_staff_cannot_read_the_leaders_login_code_and_log_in_as_the_leader(secured, phones, monkeypatch, gateway):
    from config import get_settings

    if gateway == "twilio":  # the same, with Twilio against the local fake
        from tests.fakes.twilio_server import FakeTwilio, use_fake_twilio

        fake = FakeTwilio().__enter__()
        use_fake_twilio(monkeypatch, fake)
    try:
        leader = secured.people["leading_leader"]
        now = await call(secured.app, "GET", "/api/duty/now", headers=bearer(secured, "duty_staff"))
        assert now.status == 200
        mobile = mobile_of(leader)
        async with browser(secured.app) as staff:
            csrf = await login_form(staff)
            assert (await staff.post("/console/login/code", data={"mobile": mobile, "csrf": csrf})).status_code == 200
            sent = await call(secured.app, "GET", "/api/outbox?subject=console-login", headers=ADMIN)
            assert sent.status == 200 and sent.json() and sent.json()[0]["purpose"] == "login_code"
            if gateway == "twilio":  # what Twilio was asked to deliver to the leader's phone
                texts = [r.one("Body") or "" for r in fake.created("sms") if r.one("To") == mobile]
            else:
                texts = phones.get(mobile, [])
            assert codes_in(texts), "the leader's phone got no code"
            code = codes_in(texts)[-1]
            for role in ROLES_SEEN:
                listed = await call(secured.app, "GET", "/api/outbox?subject=console-login", headers=bearer(secured, role))
                assert listed.status == 200 and code not in listed.text and "******" in listed.text, role
            seen = set(re.findall(r"\d{6}", (await call(secured.app, "GET", "/api/outbox?limit=1000",
                                                       headers=bearer(secured, "duty_staff"))).text))
            for guess in sorted(seen - {code})[:4]:  # whatever six digits staff can read: none logs in
                r = await staff.post("/console/login/verify", data={"mobile": mobile, "code": guess, "csrf": csrf})
                assert r.status_code == 401
            assert "yj_console" not in staff.cookies
    finally:
        if gateway == "twilio":
            fake.__exit__(None, None, None)
            get_settings.cache_clear()


@pytest.mark.parametrize("gateway", ["simulator", "twilio"])
async def test_one_time_links_are_masked_for_every_role_and_shown_whole_only_to_their_person(secured, monkeypatch,
                                                                                            gateway):
    """Acknowledgement links from a real call-out; confirmation and 六问 form links as their activities
    write them (store.duty tokens)."""
    from api.console import auth
    from config import get_settings
    from store.auth import create_token, lookup_token
    from store.duty import make_confirm_token, make_form_token

    cid = await start_callout(secured.app)
    links = await poll(lambda: asyncio.sleep(0, links_sent(cid)), bool, timeout=30, what="SMS with links")
    person, ack_path = sorted(links.items())[0]
    key, base = secured.settings.signing_key(), secured.settings.base_url
    other_paths = [f"/confirm/{make_confirm_token(key, 'freshness-x', person)}",
                   f"/spotcheck/{make_form_token(key, 'spotcheck-x', person)}"]
    with session_scope() as s:
        for i, path in enumerate(other_paths):
            s.add(OutboxMessage(idempotency_key=f"sec-link-{uuid.uuid4().hex}", gateway="simulator", channel="sms",
                                to=mobile_of(person), person_id=person, subject=cid, status="sent",
                                body=f"请点击 {base}{path} 确认", meta={"purpose": "notify"}))
    tokens = [p.rsplit("/", 1)[1] for p in (ack_path, *other_paths)]
    monkeypatch.setenv("YINGJI_GATEWAY", gateway)
    get_settings.cache_clear()
    for role in ROLES_SEEN:
        listed = await call(secured.app, "GET", f"/api/outbox?subject={cid}&limit=1000", headers=bearer(secured, role))
        assert listed.status == 200, role
        assert not [t for t in tokens if t in listed.text], f"{role} reads a one-time link ({gateway})"
        assert all(f"{p}********" in listed.text for p in ("/ack/", "/confirm/", "/spotcheck/")), role
    with session_scope(write=False) as s:
        from store.callouts import CalloutTarget

        tid = s.exec(select(CalloutTarget.id).where(CalloutTarget.callout_id == cid,
                                                    CalloutTarget.person_id == person)).one()
    for role in ROLES_SEEN:  # the console's view of the person's messages
        page = await call(secured.app, "GET", f"/console/callouts/{cid}/targets/{tid}",
                          headers={"cookie": secured.sessions[role]["cookie"]})
        assert page.status == 200 and not [t for t in tokens if t in page.text], role

    # "my phone": the person's own session sees them whole (simulator), nobody else's does
    with session_scope() as s:
        own = create_token(s, "duty_staff", person_id=person, label="own phone")
        stranger = create_token(s, "duty_chief", person_id=secured.people["duty_chief"], label="someone else")
    cookies = {}
    with session_scope(write=False) as s:
        for name, tok in (("own", own), ("stranger", stranger)):
            cookies[name] = f"{auth.COOKIE}={auth.session_cookie(secured.settings, {'m': 'token', 't': lookup_token(s, tok).id})}"
    mine = await call(secured.app, "GET", "/console/phone", headers={"cookie": cookies["own"]})
    theirs = await call(secured.app, "GET", "/console/phone", headers={"cookie": cookies["stranger"]})
    admin = await call(secured.app, "GET", "/console/phone", headers={"cookie": secured.sessions["admin"]["cookie"]})
    assert not [t for t in tokens if t in theirs.text] and not [t for t in tokens if t in admin.text]
    if gateway == "simulator":
        assert mine.status == 200 and all(t in mine.text for t in tokens), mine.text[-2000:]
        assert (await call(secured.app, "GET", ack_path)).status == 200  # and the link works from there
    else:
        assert mine.status == 404 and not [t for t in tokens if t in mine.text]  # on the real phone


# ------------------------------------------------------------------ 5, 6: link limits


def add_villages(per_town: int) -> None:
    """`per_town` more villages in each of the two towns the CAP alert names, a flood person each."""
    with session_scope() as s:
        for t in (1, 2):
            tid = f"330110{t:03d}"
            head = s.exec(select(Post.person_id).where(Post.position_code == "town_head", Post.org_unit_id == tid)).one()
            for v in range(100, 100 + per_town):
                vid = f"{tid}{v:03d}"
                s.add(OrgUnit(id=vid, name=f"第{t}街道{v}村", kind="village", parent_id=tid, area_code=vid))
                s.flush()
                pid = f"p-extra-{vid}"
                s.add(Person(id=pid, name=f"村{t}-{v}防汛责任人", mobile=f"+86137{t:02d}{v:06d}", org_unit_id=vid))
                s.add(Post(position_code="village_flood_resp", org_unit_id=vid, person_id=pid, superior_id=head))


async def test_a_hundred_persons_links_from_one_address_all_count(secured):
    add_villages(50)
    cid = await start_callout(secured.app)
    links = await poll(lambda: asyncio.sleep(0, links_sent(cid)), lambda x: len(x) >= 101, timeout=120,
                       what="101 SMS with links")
    chosen = sorted(links)[:100]
    answers = await asyncio.gather(*(call(secured.app, "POST", links[p], client="198.51.100.77", timeout=120)
                                     for p in chosen))
    assert [a.status for a in answers] == [200] * 100, sorted({a.status for a in answers})

    def acked():
        with session_scope(write=False) as s:
            return {e.payload["person_id"] for e in s.exec(select(AuditEvent).where(AuditEvent.subject == cid,
                                                                                  AuditEvent.kind == "callout.ack"))}

    await poll(lambda: asyncio.sleep(0, acked()), lambda a: a >= set(chosen), timeout=120, what="100 acknowledgements")

    # one link hammered (a person's, or someone who has it) is still limited, from any address
    got = await hammer(secured, links[sorted(links)[100]])
    assert set(got) == {200}


async def hammer(env, path: str) -> list[int]:
    """GET one link from ever new addresses until 429: the answers before it. A slow run may earn
    a request or two back as the bucket refills; they are counted from the time it took."""
    limit = env.settings.rate_link_per_token_per_min
    started, got = time.monotonic(), []
    while (r := await call(env.app, "GET", path, client=f"203.0.113.{len(got) % 250}")).status != 429:
        got.append(r.status)
        earned = (time.monotonic() - started) * limit / 60  # tokens a slow run earns back: a slower machine passes more easily
        assert len(got) <= limit + earned + 1, f"never limited: {got}"
    assert len(got) >= limit and int(r.headers["retry-after"]) >= 1
    return got


@pytest.mark.parametrize("prefix", ["/ack/", "/confirm/", "/spotcheck/"])
async def test_garbage_links_are_limited_per_client_and_bodies_to_16_kb(secured, prefix):
    limit = secured.settings.rate_ack_per_min
    started, answers = time.monotonic(), []
    while (r := await call(secured.app, "GET" if len(answers) % 2 else "POST", f"{prefix}guess-{len(answers)}",
                           client="203.0.113.40")).status != 429:
        answers.append(r.status)
        earned = (time.monotonic() - started) * limit / 60  # tokens a slow run earns back: a slower machine passes more easily
        assert len(answers) <= limit + earned + 1, "never limited"
    assert "retry-after" in r.headers and set(answers) == {403}, set(answers)
    assert (await call(secured.app, "GET", f"{prefix}guess-y", client="203.0.113.41")).status == 403  # someone else
    big = await call(secured.app, "POST", f"{prefix}x", client="203.0.113.42", content=b"a=" + b"x" * 16_000,
                     headers={"content-type": "application/x-www-form-urlencoded"})
    assert big.status == 413


@pytest.mark.parametrize("prefix", ["/confirm/", "/spotcheck/"])
async def test_a_confirmation_or_form_link_hammered_is_limited(secured, prefix):
    from store.duty import make_confirm_token, make_form_token

    make = make_confirm_token if prefix == "/confirm/" else make_form_token
    path = prefix + make(secured.settings.signing_key(), "some-round", secured.people["330110001001.resp"])
    assert 429 not in await hammer(secured, path)


# ------------------------------------------------------------------ 10: the login answers


def _page_text(html: str, mobile: str) -> str:
    return re.sub(r'name="csrf" value="[^"]+"', "", html).replace(mobile, "MOBILE")


async def test_the_code_request_answers_the_same_for_a_person_and_for_an_unknown_number(secured, phones):
    known = mobile_of(secured.people["duty_chief"])
    unknown = "+8613812345678"
    seen = {}
    for i, mobile in enumerate((known, unknown)):
        async with browser(secured.app, f"198.51.100.{60 + i}") as c:
            csrf = await login_form(c)
            seen[mobile] = [(r.status_code, _page_text(r.text, mobile)) for r in
                            [await c.post("/console/login/code", data={"mobile": mobile, "csrf": csrf}) for _ in range(5)]]
    assert seen[known] == seen[unknown]
    assert {status for status, _ in seen[known]} == {200}
    assert codes_in(phones.get(known, [])) and not phones.get(unknown)


async def test_someone_elses_requests_neither_lock_a_person_out_nor_spend_their_code(secured, phones):
    chief = secured.people["duty_chief"]
    mobile = mobile_of(chief)
    async with browser(secured.app, "198.51.100.70") as owner:
        csrf = await login_form(owner)
        assert (await owner.post("/console/login/code", data={"mobile": mobile, "csrf": csrf})).status_code == 200
        own_code = codes_in(phones[mobile])[-1]
        for i in range(4):  # someone else, from four browsers and addresses, asks and guesses
            async with browser(secured.app, f"203.0.113.{80 + i}") as other:
                ocsrf = await login_form(other)
                assert (await other.post("/console/login/code", data={"mobile": mobile, "csrf": ocsrf})).status_code == 200
                for guess in ("000000", "123456", "999999", "111111", "222222"):
                    if guess != own_code:
                        await other.post("/console/login/verify", data={"mobile": mobile, "code": guess, "csrf": ocsrf})
        r = await owner.post("/console/login/verify", data={"mobile": mobile, "code": own_code, "csrf": csrf})
        assert r.status_code == 303, "the person's own code no longer works"
    async with browser(secured.app, "198.51.100.71") as owner_again:  # and a new code still comes
        csrf = await login_form(owner_again)
        before = len(codes_in(phones[mobile]))
        await owner_again.post("/console/login/code", data={"mobile": mobile, "csrf": csrf})
        assert len(codes_in(phones[mobile])) == before + 1
        r = await owner_again.post("/console/login/verify",
                                   data={"mobile": mobile, "code": codes_in(phones[mobile])[-1], "csrf": csrf})
        assert r.status_code == 303


# ------------------------------------------------------------------ 11: sessions


async def test_logout_ends_the_session_everywhere(secured):
    for role in ("duty_staff", "admin"):
        async with browser(secured.app) as c:
            csrf = await login_form(c)
            token = ADMIN_TOKEN if role == "admin" else secured.tokens[role]
            assert (await c.post("/console/login/token", data={"token": token, "csrf": csrf})).status_code == 303
            cookie = c.cookies.get("yj_console")
            desk = await c.get("/console/desk")
            assert desk.status_code == 200
            session_csrf = re.search(r'<meta name="csrf-token" content="([^"]+)"', desk.text).group(1)
            out = await c.post("/console/logout", headers={"X-CSRF-Token": session_csrf})
            assert out.status_code == 303
        stolen = await call(secured.app, "GET", "/console/desk", headers={"cookie": f"yj_console={cookie}"})
        assert stolen.status == 303 and stolen.headers["location"].startswith("/console/login"), role


async def test_an_sms_session_follows_the_duty_roster(secured, phones):
    from store.roster import DutyShift

    chief = secured.people["duty_chief"]
    mobile = mobile_of(chief)
    async with browser(secured.app) as c:
        csrf = await login_form(c)
        await c.post("/console/login/code", data={"mobile": mobile, "csrf": csrf})
        r = await c.post("/console/login/verify", data={"mobile": mobile, "code": codes_in(phones[mobile])[-1], "csrf": csrf})
        assert r.status_code == 303
        assert "(值班长)" in (await c.get("/console/desk")).text
        assert (await c.get("/console/callouts/new")).status_code == 200
        with session_scope() as s:  # the roster changes: now a duty cadre
            for shift in s.exec(select(DutyShift).where(DutyShift.person_id == chief)):
                shift.role = "duty_cadre"
        assert "(值班干部)" in (await c.get("/console/desk")).text
        with session_scope() as s:  # and off duty altogether
            for shift in s.exec(select(DutyShift).where(DutyShift.person_id == chief)):
                shift.ends_at = datetime.now(UTC) - timedelta(minutes=1)
        off = await c.get("/console/desk")
        assert off.status_code == 303 and off.headers["location"].startswith("/console/login")


# ------------------------------------------------------------------ 16 and slow headers: `yingji api` itself


@pytest.fixture
def api_server(db_url, tmp_path):
    """`yingji api` as a process of its own (Temporal not needed here); yields a starter."""
    procs = []

    def start(*args: str, **env_extra: str) -> str:
        port = free_port()
        env = {**os.environ, "YINGJI_DATABASE_URL": db_url, "YINGJI_ADMIN_TOKEN": ADMIN_TOKEN,
               "YINGJI_RUN_SCHEDULER": "false", "YINGJI_DATA_DIR": str(tmp_path / "data"),
               "YINGJI_TEMPORAL_ADDRESS": f"127.0.0.1:{free_port()}", "NO_COLOR": "1", **env_extra}
        log = (tmp_path / f"api-{port}.log").open("wb")
        proc = subprocess.Popen([sys.executable, "-m", "cli.main", "api", "--port", str(port), "--no-access-log", *args],
                                cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        procs.append(proc)
        base = f"http://127.0.0.1:{port}"
        start.pids.append(proc.pid)
        deadline = time.monotonic() + 60  # anti-hang bound, ~10x a start on a busy machine
        while True:
            try:
                httpx.get(base + "/console/login", timeout=2)
                return base
            except httpx.HTTPError:
                assert proc.poll() is None and time.monotonic() < deadline, (tmp_path / f"api-{port}.log").read_text()
                time.sleep(0.2)

    start.pids = []
    yield start
    for proc in procs:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


async def _guess_until_429(base: str, forwarded, tries: int) -> list[int]:
    async with httpx.AsyncClient(base_url=base, timeout=30) as c:
        csrf = await login_form(c)
        answers = []
        for i in range(tries):
            r = await c.post("/console/login/token", data={"token": f"guess-{i}", "csrf": csrf},
                             headers={"X-Forwarded-For": forwarded(i)})
            answers.append(r.status_code)
            if r.status_code == 429:
                break
        return answers


async def test_rotating_x_forwarded_for_does_not_bypass_the_login_limit(api_server):
    from config import Settings

    limit = Settings().rate_login_per_min
    base = api_server()
    answers = await _guess_until_429(base, lambda i: f"10.{i // 250}.{i % 250}.7", tries=3 * limit)
    assert answers[-1] == 429 and len(answers) <= 2 * limit, answers  # one bucket: the socket's address


async def test_forwarded_addresses_count_only_from_a_configured_proxy(api_server):
    from config import Settings

    limit = Settings().rate_login_per_min
    base = api_server(YINGJI_TRUSTED_PROXIES="127.0.0.1")  # we are the proxy now
    answers = await _guess_until_429(base, lambda i: f"10.{i // 250}.{i % 250}.7", tries=limit + 5)
    assert 429 not in answers and len(answers) == limit + 5  # each forwarded client has its own bucket
    same = await _guess_until_429(base, lambda i: "10.9.9.9", tries=3 * limit)
    assert same[-1] == 429  # and one forwarded client is limited


def _closed_within(sock: socket.socket, bound_s: float, trickle: bytes | None) -> bool:
    """Send `trickle` a byte at a time (every 0.3 s) until the server closes the connection or
    `bound_s` passes; whether it closed."""
    deadline = time.monotonic() + bound_s
    sock.settimeout(0.3)
    data = iter(trickle or b"")
    while time.monotonic() < deadline:
        try:
            if sock.recv(1024) == b"":
                return True
        except TimeoutError:
            pass
        except (ConnectionResetError, BrokenPipeError):
            return True
        byte = next(data, None)
        if byte is not None:
            try:
                sock.sendall(bytes([byte]))
            except (ConnectionResetError, BrokenPipeError):
                return True
    return False


async def test_a_client_that_sends_its_headers_slowly_is_cut_off(api_server):
    base = api_server(YINGJI_HEADER_TIMEOUT_S="1")
    port = int(base.rsplit(":", 1)[1])
    slow_head = b"GET /console/login HTTP/1.1\r\nHost: x\r\n" + b"X-Slow: " + b"a" * 200
    silent, slow = socket.create_connection(("127.0.0.1", port)), socket.create_connection(("127.0.0.1", port))
    try:
        results = await asyncio.gather(asyncio.to_thread(_closed_within, silent, 10.0, None),  # 10x the timeout
                                       asyncio.to_thread(_closed_within, slow, 10.0, slow_head))
        assert results == [True, True], results
    finally:
        silent.close()
        slow.close()
    async with httpx.AsyncClient(base_url=base, timeout=30) as c:  # a normal client is unaffected,
        for _ in range(3):  # also on a kept-alive connection
            assert (await c.get("/console/login")).status_code == 200


def _raw_get(port: int, header_bytes: int) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(b"GET /console/login HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * header_bytes + b"\r\n\r\n")
        return sock.recv(200)


async def test_a_request_head_over_16_kb_is_refused(api_server):
    port = int(api_server().rsplit(":", 1)[1])
    big, fine = await asyncio.gather(asyncio.to_thread(_raw_get, port, 20_000), asyncio.to_thread(_raw_get, port, 10_000))
    assert big.startswith(b"HTTP/1.1 400"), big
    assert fine.startswith(b"HTTP/1.1 200"), fine


def _children(pid: int) -> list[int]:
    return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


async def test_api_with_several_worker_processes(api_server):
    base = api_server("--workers", "2")
    [supervisor] = api_server.pids
    served = [c for c in _children(supervisor) if b"spawn_main" in Path(f"/proc/{c}/cmdline").read_bytes()]
    assert len(served) == 2, served  # two processes serve the one port
    for _ in range(20):  # a new connection each: either process answers
        async with httpx.AsyncClient(base_url=base, timeout=30) as c:
            assert (await c.get("/console/login")).status_code == 200
