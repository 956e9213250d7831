"""Who may use the console (issue 19, items 2 and 6), through httpx on the app: the admin's users and tokens
page (admin only, every change audited, a revoked token's session ends), the demo's role logins and simulator
codes (offered only when set, with the simulator and the demo district), phone numbers whole with tel: links
for the duty office and masked for the supervisor, the directory's Chinese unit kinds, post labels."""
from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlmodel import select

from config import get_settings
from store.audit import AuditEvent
from store.auth import ApiToken, create_token
from store.db import session_scope
from store.directory import Person, post_label
from store.roster import DutyShift
from tests.helpers import console_login, console_post


@pytest.fixture
def people(db_url, monkeypatch):
    from tests.factories import small_district

    monkeypatch.setenv("YINGJI_ADMIN_TOKEN", "console-admin")
    monkeypatch.setenv("YINGJI_RUN_SCHEDULER", "false")
    get_settings.cache_clear()
    with session_scope() as s:
        return small_district(s)


@pytest.fixture
def app(people):
    from api.app import create_app

    return create_app()


def _token(role: str, person: str | None = None, label: str = "") -> str:
    with session_scope() as s:
        return create_token(s, role, person, label or role)


def _events(kind: str) -> list[AuditEvent]:
    with session_scope(write=False) as s:
        return list(s.exec(select(AuditEvent).where(AuditEvent.subject == "access", AuditEvent.kind == kind)))


async def test_the_admin_creates_changes_and_revokes_tokens(app, people):
    admin = await console_login(app, "console-admin")
    page = await admin.get("/console/users")
    assert page.status_code == 200 and "用户与令牌" in page.text and 'href="/console/users"' in page.text

    made = await console_post(admin, "/console/users", {"role": "duty_staff", "person_id": people["duty_cadre"],
                                                        "label": "值班电脑"})
    assert made.status_code == 201
    token = re.search(r'<code id="new-token" class="token">(yj_[^<]+)</code>', made.text).group(1)
    assert "专业值班员" in made.text
    assert len(_events("access.token.created")) == 1

    staff = await console_login(app, token)  # the new token logs in, as the role given
    assert "专业值班员" in (await staff.get("/console/desk")).text
    with session_scope(write=False) as s:
        row = s.exec(select(ApiToken).where(ApiToken.label == "值班电脑")).one()
    listed = (await admin.get("/console/users")).text
    assert f'data-token-id="{row.id}"' in listed and "从未" not in listed.split(f'data-token-id="{row.id}"')[1][:600]

    changed = await console_post(admin, f"/console/users/{row.id}/role", {"role": "duty_chief"})
    assert changed.status_code == 303
    assert "值班长" in (await staff.get("/console/desk")).text  # the session follows at its next request
    assert [e.payload["before"] for e in _events("access.token.role_changed")] == ["duty_staff"]

    revoked = await console_post(admin, f"/console/users/{row.id}/revoke", {})
    assert revoked.status_code == 303 and len(_events("access.token.revoked")) == 1
    gone = await staff.get("/console/desk")
    assert gone.status_code == 303 and "/console/login" in gone.headers["location"]  # its session ended
    await staff.aclose()
    await admin.aclose()


async def test_bad_input_is_a_chinese_4xx_and_the_page_stays(app, people):
    admin = await console_login(app, "console-admin")
    bad = await console_post(admin, "/console/users", {"role": "king", "label": "x"})
    assert bad.status_code == 422 and "角色无效" in bad.text and 'id="form-new-token"' in bad.text
    nobody = await console_post(admin, "/console/users", {"role": "duty_staff", "person_id": "p-nobody"})
    assert nobody.status_code == 422 and "通讯录中没有此人" in nobody.text
    missing = await console_post(admin, "/console/users/999999/revoke", {})
    assert missing.status_code == 404 and "没有编号为 999999 的令牌" in missing.text
    assert not _events("access.token.created")
    await admin.aclose()


@pytest.mark.parametrize("role", ["duty_staff", "duty_chief", "leading_leader", "commander", "supervisor"])
async def test_only_the_admin_reaches_users(app, people, role):
    web = await console_login(app, _token(role, people.get(role)))
    assert (await web.get("/console/users")).status_code == 403
    assert 'href="/console/users"' not in (await web.get("/console/desk")).text  # not in the nav either
    assert (await console_post(web, "/console/users", {"role": "admin", "label": "mine"})).status_code == 403
    with session_scope(write=False) as s:
        row = s.exec(select(ApiToken).where(ApiToken.role == role)).first()
    assert (await console_post(web, f"/console/users/{row.id}/role", {"role": "admin"})).status_code == 403
    with session_scope(write=False) as s:
        assert s.get(ApiToken, row.id).role == role  # nothing changed
    await web.aclose()


# ------------------------------------------------------------------ the demo's logins


async def _login_page(app) -> tuple[httpx.AsyncClient, str]:
    web = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://console.test")
    page = (await web.get("/console/login")).text
    return web, page


async def test_no_demo_logins_unless_set(app, people):
    web, page = await _login_page(app)
    assert "demo-logins" not in page and "/console/login/demo" not in page
    csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
    refused = await web.post("/console/login/demo", data={"csrf": csrf, "role": "duty_staff"})
    assert refused.status_code == 404 and "yj_console" not in refused.cookies
    await web.aclose()


async def test_demo_logins_as_each_roster_role(people, monkeypatch):
    from api.app import create_app

    monkeypatch.setenv("YINGJI_DEMO_LOGINS", "true")
    get_settings.cache_clear()
    now = datetime.now(UTC)
    with session_scope() as s:  # the whole roster on duty now (the small district has a chief and a leader)
        for role, pid in (("duty_staff", people["D01.deputy"]), ("duty_cadre", people["D02.deputy"])):
            s.add(DutyShift(starts_at=now - timedelta(hours=1), ends_at=now + timedelta(hours=8), role=role, person_id=pid))
    app = create_app()
    web, page = await _login_page(app)
    assert "演示:以值班表角色登录" in page
    for role in ("duty_staff", "duty_cadre", "duty_chief", "leading_leader"):
        assert f'data-demo-role="{role}"' in page
    csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
    resp = await web.post("/console/login/demo", data={"csrf": csrf, "role": "duty_staff"})
    assert resp.status_code == 303
    desk = await web.get("/console/desk")
    with session_scope(write=False) as s:
        name = s.get(Person, people["D01.deputy"]).name
    assert desk.status_code == 200 and name in desk.text and "专业值班员" in desk.text
    await web.aclose()

    monkeypatch.setenv("YINGJI_GATEWAY", "twilio")  # never with a production gateway
    get_settings.cache_clear()
    web, page = await _login_page(create_app())
    assert "demo-logins" not in page
    await web.aclose()


async def test_the_demo_login_page_shows_the_simulator_code(people, monkeypatch):
    from api.app import create_app
    from api.console import auth

    monkeypatch.setenv("YINGJI_DEMO_LOGINS", "true")
    get_settings.cache_clear()
    app = create_app()
    web, page = await _login_page(app)
    csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
    with session_scope(write=False) as s:
        mobile = s.get(Person, people["duty_chief"]).mobile
    sent = await web.post("/console/login/code", data={"csrf": csrf, "mobile": mobile})
    assert sent.status_code == 200 and 'id="demo-code"' in sent.text
    shown = await web.get("/console/login/demo-code", params={"mobile": mobile})
    code = re.search(r'<strong id="demo-code-value">(\d{6})</strong>', shown.text).group(1)
    resp = await web.post("/console/login/verify", data={"csrf": csrf, "mobile": mobile, "code": code})
    assert resp.status_code == 303 and auth.COOKIE in resp.cookies
    await web.aclose()


# ------------------------------------------------------------------ phone numbers and labels


async def test_duty_roles_see_numbers_and_the_supervisor_masked(app, people):
    with session_scope(write=False) as s:
        mobile = s.get(Person, people["D01.head"]).mobile
    chief = await console_login(app, _token("duty_chief", people["duty_chief"]))
    page = (await chief.get("/console/directory", params={"unit": "D01"})).text
    assert f'href="tel:{mobile}"' in page
    assert "部门" in page and "乡镇(街道)" in page and ">district<" not in page and "village:" not in page
    sup = await console_login(app, _token("supervisor", None, "督查"))
    masked = (await sup.get("/console/directory", params={"unit": "D01"})).text
    assert "tel:" not in masked and mobile not in masked and mobile[-4:] in masked and "****" in masked
    await chief.aclose()
    await sup.aclose()


def test_post_labels_read_as_people_say_them():
    assert post_label("东山村", "村(社区)防汛责任人") == "东山村 防汛责任人"
    assert post_label("青溪街道", "乡镇(街道)党委书记") == "青溪街道 党委书记"
    assert post_label("青溪区", "区长") == "青溪区 区长"
