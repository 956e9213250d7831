"""`/api/readiness` and the console's 每月调度 page: the checks and each team's answer, read by every role; a check
started by hand only by the duty chief (403 for others), 404 for an unknown one; the page in Chinese, leaders by
name."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest

from config import get_settings
from store.auth import create_token
from store.db import session_scope
from store.resources import ReadinessAnswer, ReadinessRun, RescueTeam
from tests.factories import small_district


@pytest.fixture
async def web(db_url, monkeypatch, env):
    monkeypatch.setenv("YINGJI_ADMIN_TOKEN", "duty-admin")
    monkeypatch.setenv("YINGJI_RUN_SCHEDULER", "false")
    get_settings.cache_clear()
    at = datetime(2026, 12, 1, 1, 30, tzinfo=UTC)
    with session_scope() as s:
        people = small_district(s, towns=1, villages=1)
        s.add(RescueTeam(id="T-A", name="水利防汛抢险队", kind="flood", strength=40, duty_phone="+8657186900201",
                         leader_id=people["330110001.head"], readiness="unready"))
        s.add(ReadinessRun(id="readiness-monthly-2026-12", started_at=at, status="closed", closed_at=at + timedelta(hours=1),
                           total=1, no_answer=1))
        s.flush()
        s.add(ReadinessAnswer(run_id="readiness-monthly-2026-12", team_id="T-A", team_name="水利防汛抢险队",
                              duty_phone="+8657186900201", leader_id=people["330110001.head"], state="no_answer",
                              escalated=True))
        tokens = {role: create_token(s, role, person_id=people.get(role), label=role)
                  for role in ("duty_staff", "duty_chief", "commander")}
    from api.app import create_app

    app = create_app(temporal_client=env.client)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        client.as_role = lambda role: {"Authorization": f"Bearer {tokens[role]}"}
        client.people = people
        yield client


async def test_runs_and_one_run(web):
    r = await web.get("/api/readiness", headers=web.as_role("commander"))
    assert r.status_code == 200 and [x["id"] for x in r.json()] == ["readiness-monthly-2026-12"]
    assert r.json()[0]["no_answer"] == 1
    r = await web.get("/api/readiness/readiness-monthly-2026-12", headers=web.as_role("duty_staff"))
    assert r.status_code == 200
    [team] = r.json()["teams"]
    assert team["team_id"] == "T-A" and team["state"] == "no_answer" and team["state_zh"] == "无人应答"
    r = await web.get("/api/readiness/readiness-nope", headers=web.as_role("duty_staff"))
    assert r.status_code == 404 and "readiness-nope" in r.json()["detail"]


async def test_only_the_duty_chief_starts_one(web, env):
    for role in ("duty_staff", "commander"):
        r = await web.post("/api/readiness", headers=web.as_role(role))
        assert r.status_code == 403, r.text
    r = await web.post("/api/readiness", headers=web.as_role("duty_chief"))
    assert r.status_code == 202, r.text
    rid = r.json()["run_id"]
    assert rid.startswith("readiness-")
    handle = env.client.get_workflow_handle(rid)
    desc = await handle.describe()
    assert desc.workflow_type == "ReadinessCheckWorkflow"
    await handle.terminate("test over")  # (no worker in this test)


async def test_console_page_in_chinese(web):
    from api.console import auth
    from store.auth import lookup_token

    settings = get_settings()
    with session_scope() as s:
        token = create_token(s, "duty_staff", label="值班员")
    with session_scope(write=False) as s:
        cookie = auth.session_cookie(settings, {"m": "token", "t": lookup_token(s, token).id})
    h = {"cookie": f"{auth.COOKIE}={cookie}"}
    r = await web.get("/console/resources/readiness", headers=h)
    assert r.status_code == 200, r.text
    assert "每月调度" in r.text and "水利防汛抢险队" in r.text and "无人应答" in r.text and "已升级至队长" in r.text
    assert web.people["330110001.head"] not in r.text  # the leader by name, never by id
    assert 'href="/console/resources/readiness"' in (await web.get("/console/resources", headers=h)).text
    r = await web.get("/console/resources/readiness", params={"run": "readiness-nope"}, headers=h)
    assert r.status_code == 404 and "readiness-nope" in r.text
