"""Console sessions: bearer-token and SMS-code login, CSRF, cookie flags, roles."""
from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlmodel import select

from api.console import auth
from config import get_settings
from store.auth import ApiToken, create_token
from store.console import LoginCode
from store.db import session_scope
from store.directory import Person
from store.messages import OutboxMessage


@pytest.fixture
def people(db_url, monkeypatch):
    from tests.factories import small_district

    monkeypatch.setenv("YINGJI_ADMIN_TOKEN", "console-admin")
    monkeypatch.setenv("YINGJI_RUN_SCHEDULER", "false")
    monkeypatch.setenv("YINGJI_SIMULATOR_SHOW_CODES", "true")  # the terminal is the phone, as in `yingji run`
    get_settings.cache_clear()
    with session_scope() as s:
        return small_district(s)


@pytest.fixture
async def web(people):
    from api.app import create_app

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app()), base_url="http://console.test") as c:
        yield c


def _mobile(person_id: str) -> str:
    with session_scope(write=False) as s:
        return s.get(Person, person_id).mobile


def _csrf(html: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', html).group(1)


async def _login_form(web: httpx.AsyncClient) -> str:
    return _csrf((await web.get("/console/login")).text)


def _printed_code(capsys) -> str:
    """The last code the simulator printed to the terminal (the demo's phone)."""
    return re.findall(r"登录验证码 (\d{6})", capsys.readouterr().out)[-1]


CLIENT = auth.client_hash("a-login-form-cookie")


async def test_the_root_address_leads_to_the_console(web):
    """`make run` prints the site's root as the console's address: it must not be a 404."""
    root = await web.get("/")
    assert root.status_code == 303 and root.headers["location"] == "/console"
    page = await web.get("/", follow_redirects=True)
    assert page.status_code == 200 and str(page.url).endswith("/console/login?next=/console/desk")


async def test_a_console_address_that_does_not_exist_is_a_page_in_chinese(web):
    """Not `{"detail":"Not Found"}`: the console's message page, Chinese first; the REST API stays JSON."""
    page = await web.get("/console/no-such-page")
    assert page.status_code == 404 and page.headers["content-type"].startswith("text/html")
    assert "页面不存在" in page.text and "no such page" not in page.text
    english = await web.get("/console/no-such-page?lang=en")
    assert english.status_code == 404 and "no such page" in english.text
    api = await web.get("/api/no-such-route")
    assert api.status_code == 404 and api.json() == {"detail": "Not Found"}


async def test_pages_need_a_session(web):
    resp = await web.get("/console/desk")
    assert resp.status_code == 303 and resp.headers["location"] == "/console/login?next=/console/desk"
    htmx = await web.get("/console/desk", headers={"HX-Request": "true"})
    assert htmx.status_code == 401 and htmx.headers["HX-Redirect"] == "/console/login"


async def test_token_login_sets_a_strict_httponly_cookie_and_checks_csrf(web):
    csrf = await _login_form(web)
    assert (await web.post("/console/login/token", data={"token": "console-admin", "csrf": "forged"})).status_code == 403
    assert (await web.post("/console/login/token", data={"token": "nope", "csrf": csrf})).status_code == 401
    resp = await web.post("/console/login/token", data={"token": "console-admin", "csrf": csrf, "next": "https://evil.example/"})
    assert resp.status_code == 303 and resp.headers["location"] == "/console/desk"  # no open redirect
    cookie = next(c for c in resp.headers.get_list("set-cookie") if c.startswith(auth.COOKIE))
    assert "httponly" in cookie.lower() and "samesite=strict" in cookie.lower()
    desk = await web.get("/console/desk")
    assert desk.status_code == 200 and "值班长丁" in desk.text
    token = re.search(r'<meta name="csrf-token" content="([^"]+)"', desk.text).group(1)
    # every POST needs the session's CSRF token
    assert (await web.post("/console/logout")).status_code == 403
    assert (await web.post("/console/logout", headers={"X-CSRF-Token": token})).status_code == 303


async def test_revoking_the_token_ends_the_session(web, people):
    with session_scope() as s:
        token = create_token(s, "duty_staff", label="desk pc")
    csrf = await _login_form(web)
    assert (await web.post("/console/login/token", data={"token": token, "csrf": csrf})).status_code == 303
    assert (await web.get("/console/desk")).status_code == 200
    with session_scope() as s:
        for row in s.exec(select(ApiToken)):
            row.revoked = True
    assert (await web.get("/console/desk")).status_code == 303


async def test_roles_decide_the_pages(web):
    with session_scope() as s:
        staff, sup = create_token(s, "duty_staff"), create_token(s, "supervisor")
    csrf = await _login_form(web)
    await web.post("/console/login/token", data={"token": staff, "csrf": csrf})
    assert (await web.get("/console/replay")).status_code == 403
    assert (await web.get("/console/callouts/new")).status_code == 200
    web.cookies.clear()
    csrf = await _login_form(web)
    await web.post("/console/login/token", data={"token": sup, "csrf": csrf})
    assert (await web.get("/console/replay")).status_code == 200
    assert (await web.get("/console/callouts/new")).status_code == 403


async def test_sms_code_login_once_within_five_minutes(web, people, capsys):
    mobile = _mobile(people["duty_chief"])  # on the roster as duty chief: may log in
    csrf = await _login_form(web)
    resp = await web.post("/console/login/code", data={"mobile": mobile, "csrf": csrf})
    assert resp.status_code == 200 and 'name="code"' in resp.text
    code = _printed_code(capsys)
    with session_scope(write=False) as s:
        row = s.exec(select(LoginCode)).one()
        assert code not in row.code_hash and len(row.code_hash) == 64
        assert row.expires_at - row.created_at == timedelta(minutes=5)
        assert s.get(OutboxMessage, row.outbox_id).status == "sent"
        assert code not in s.get(OutboxMessage, row.outbox_id).body  # the outbox never holds it
    wrong = "000000" if code != "000000" else "111111"
    assert (await web.post("/console/login/verify", data={"mobile": mobile, "code": wrong, "csrf": csrf})).status_code == 401
    ok = await web.post("/console/login/verify", data={"mobile": mobile, "code": code, "csrf": csrf})
    assert ok.status_code == 303
    desk = await web.get("/console/desk")
    assert "值班长丁" in desk.text and "(值班长)" in desk.text
    # single use
    with pytest.raises(auth.CodeError):
        auth.verify_code(get_settings(), mobile, code, auth.client_hash(csrf))


def _code(req) -> str:
    return re.search(r"\d{6}", req.body).group(0)


def test_codes_expire_are_capped_and_tried_five_times(people):
    settings = get_settings()
    mobile = _mobile(people["duty_cadre"])
    t0 = datetime.now(UTC)
    assert auth.create_code(settings, mobile, CLIENT, now=t0)
    assert auth.create_code(settings, mobile, CLIENT, now=t0 + timedelta(seconds=10)) is None  # one every 30 s
    first = auth.create_code(settings, mobile, CLIENT, now=t0 + timedelta(seconds=40))
    newest = auth.create_code(settings, mobile, CLIENT, now=t0 + timedelta(seconds=80))
    with pytest.raises(auth.CodeError):  # this browser asked again: its newer code replaced it
        auth.verify_code(settings, mobile, _code(first), CLIENT, now=t0 + timedelta(seconds=90))
    with pytest.raises(auth.CodeError):  # expired after 5 minutes
        auth.verify_code(settings, mobile, _code(newest), CLIENT, now=t0 + timedelta(seconds=80, minutes=5, milliseconds=1))
    sent = 3
    for i in range(20):  # at most CODES_PER_WINDOW an hour, whoever asks
        sent += auth.create_code(settings, mobile, auth.client_hash(f"b{i}"), now=t0 + timedelta(minutes=6)) is not None
    assert sent == auth.CODES_PER_WINDOW
    later = t0 + timedelta(minutes=61)
    code = _code(auth.create_code(settings, mobile, CLIENT, now=later))
    for _ in range(5):
        with pytest.raises(auth.CodeError):
            auth.verify_code(settings, mobile, "99999x", CLIENT, now=later)
    with pytest.raises(auth.CodeError):  # spent by five wrong tries
        auth.verify_code(settings, mobile, code, CLIENT, now=later)


def test_a_code_works_only_in_the_browser_that_asked_for_it(people):
    settings = get_settings()
    mobile = _mobile(people["duty_cadre"])
    mine = auth.create_code(settings, mobile, CLIENT)
    with pytest.raises(auth.CodeError):
        auth.verify_code(settings, mobile, _code(mine), auth.client_hash("another browser"))
    assert auth.verify_code(settings, mobile, _code(mine), CLIENT)["p"] == people["duty_cadre"]


def test_no_code_for_people_without_a_console_role_and_never_in_the_outbox(people, monkeypatch):
    settings = get_settings()
    assert auth.create_code(settings, _mobile(people["330110001001.resp"]), CLIENT) is None  # a village responsible person
    assert auth.create_code(settings, "+8613000000000", CLIENT) is None
    assert auth.create_code(settings, "not a number", CLIENT) is None
    for gateway in ("simulator", "twilio"):
        monkeypatch.setenv("YINGJI_GATEWAY", gateway)
        get_settings.cache_clear()
        req = auth.create_code(get_settings(), _mobile(people["duty_chief"]), auth.client_hash(gateway))
        with session_scope(write=False) as s:
            stored = s.get(OutboxMessage, req.outbox_id).body
        assert _code(req) not in stored and "******" in stored
