"""事发时间, 知悉时间 and the reporting unit's report time through the API (httpx → create_app, time-skipping server,
real worker and database): each checked (a time zone, in order, not in the future: 422 with the reason), the unit's
迟报 measured from 知悉 against the rules' limit, shown by GET /api/incidents/{id} and on the incident's page."""
from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from api.app import create_app
from config import get_settings
from store.auth import create_token
from store.db import session_scope
from tests.factories import small_district
from tests.helpers import console_login
from tests.workflows.reporting_helpers import terminate_incidents
from worker import build_worker

INCIDENT = {"source": "town", "category": "accident", "subtype": "建筑施工", "town_id": "330110001",
            "place": "青溪路88号工地", "summary": "脚手架坍塌,2人受伤", "casualties": {"injured": 2},
            "reporting_unit": "第1街道", "reporting_unit_id": "330110001", "reporter": "街道值班员"}


@pytest.fixture
async def api(env, db_url, monkeypatch):
    monkeypatch.setenv("YINGJI_RUN_SCHEDULER", "false")
    get_settings.cache_clear()
    settings = get_settings()
    settings.task_queue = f"inc-t-{uuid.uuid4().hex[:6]}"
    with session_scope() as s:
        people = small_district(s)
        token = create_token(s, "duty_cadre", person_id=people["duty_cadre"], label="cadre")
    app = create_app(temporal_client=env.client)
    async with build_worker(env.client, task_queue=settings.task_queue), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://test",
            headers={"Authorization": f"Bearer {token}"}) as client:
        client.app, client.token, client.env = app, token, env  # type: ignore[attr-defined]
        yield client
        await terminate_incidents(env.client)


def iso(t: datetime) -> str:
    return t.isoformat()


NOW = datetime.now(UTC)


@pytest.mark.parametrize("times, words", [
    ({"known_at": "2026-07-01T03:00:00"}, "known_at"),  # no time zone
    ({"occurred_at": iso(NOW - timedelta(minutes=10)), "known_at": iso(NOW - timedelta(minutes=20))},
     "known_at"),  # known before it happened
    ({"known_at": iso(NOW - timedelta(minutes=10)), "reported_at": iso(NOW - timedelta(minutes=20))},
     "reported_at"),  # reported before it was known
    ({"occurred_at": iso(NOW + timedelta(days=1))}, "in the future"),  # NOW is taken at collection
    ({"reported_at": iso(NOW + timedelta(days=1))}, "reported_at"),
])
async def test_bad_times_get_a_422_naming_what_is_wrong(api, times, words):
    r = await api.post("/api/incidents", json={**INCIDENT, **times})
    assert r.status_code == 422 and words in r.json()["detail"], r.text


async def test_a_late_town_is_measured_and_shown(api):
    now = datetime.now(UTC)  # the API's clock checks "not in the future"; the chain measures what it is given
    body = {**INCIDENT, "id": "town-late-1", "occurred_at": iso(now - timedelta(minutes=60)),
            "known_at": iso(now - timedelta(minutes=55)), "reported_at": iso(now - timedelta(minutes=10))}
    r = await api.post("/api/incidents", json=body)
    assert r.status_code == 201, r.text
    assert r.json()["unit_report"]["late_by_s"] == 15 * 60  # 45 min after 知悉: 15 min past the 30 min limit
    d = (await api.get("/api/incidents/town-late-1")).json()
    u = d["unit_report"]
    assert u["state"] == "late" and u["late_by_min"] == 15 and u["unit_id"] == "330110001"
    assert datetime.fromisoformat(u["known_at"]) == now - timedelta(minutes=55)
    assert datetime.fromisoformat(d["occurred_at"]) == now - timedelta(minutes=60)
    [mark] = [m for m in d["late_marks"] if m["kind"] == "report.unit.late"]
    assert mark["mark"] == "迟报15分钟" and mark["late_by_s"] == 15 * 60

    on_time = {**INCIDENT, "id": "town-ok-1", "known_at": iso(now - timedelta(minutes=5)), "reported_at": iso(now)}
    assert (await api.post("/api/incidents", json=on_time)).status_code == 201
    d = (await api.get("/api/incidents/town-ok-1")).json()
    assert d["unit_report"]["state"] == "on_time" and d["unit_report"]["late_by_s"] == 0
    assert not [m for m in d["late_marks"] if m["kind"] == "report.unit.late"]
    assert (await api.post("/api/incidents", json={**INCIDENT, "id": "no-times"})).status_code == 201
    assert (await api.get("/api/incidents/no-times")).json()["unit_report"] is None

    web = await console_login(api.app, api.token)
    try:
        page = (await web.get("/console/incidents/town-late-1")).text
        assert "知悉时间" in page and "迟报 15 分钟" in page
        page = (await web.get("/console/incidents/town-ok-1")).text
        assert "按时报告" in page
    finally:
        await web.aclose()


async def test_lateral_report_only_for_a_department_with_a_vertical_line(api):
    from store.directory import OrgUnit

    with session_scope() as s:
        s.get(OrgUnit, "D04").vertical_line = True  # 区气象局
    now = datetime.now(UTC)
    town = (await api.post("/api/incidents", json={**INCIDENT, "id": "lat-town"})).json()["incident_id"]
    r = await api.post(f"/api/incidents/{town}/vertical", json={"to_whom": "市气象局", "at": iso(now)})
    assert r.status_code == 422 and "vertical line" in r.json()["detail"], r.text
    dept = {**INCIDENT, "id": "lat-d04", "category": "natural_disaster", "subtype": "雷击", "reporting_unit": "区气象局",
            "reporting_unit_id": "D04", "reported_at": iso(now), "known_at": iso(now - timedelta(minutes=1))}
    assert (await api.post("/api/incidents", json=dept)).status_code == 201
    r = await api.post("/api/incidents/lat-d04/vertical", json={"to_whom": "市气象局", "at": "2026-07-01T03:00:00"})
    assert r.status_code == 422 and "time zone" in r.json()["detail"]
    r = await api.post("/api/incidents/lat-d04/vertical",
                       json={"to_whom": "市气象局值班室", "at": iso(now - timedelta(minutes=30))})
    assert r.status_code == 200, r.text
    d = (await api.get("/api/incidents/lat-d04")).json()
    assert d["vertical"]["gap_s"] == 30 * 60 and d["vertical"]["late_by_min"] == 30
    assert (await api.post("/api/incidents/nope/vertical", json={"to_whom": "x", "at": iso(now)})).status_code == 404
    r = await api.post("/api/incidents/lat-d04/verbal", json={"to_whom": "区政府总值班室", "by_whom": "值班员"})
    assert r.status_code == 200, r.text
    web = await console_login(api.app, api.token)
    try:
        async def page_shows_upward():
            return "已签收" in (await web.get("/console/incidents/lat-d04")).text
        for _ in range(100):  # the simulator city line takes and signs the verbal report once the chain sends it
            if await page_shows_upward():
                break
            await asyncio.sleep(0.1)
        page = (await web.get("/console/incidents/lat-d04")).text
        assert "拉条报告" in page and "区里晚收到 30 分钟" in page
        assert "上报市级" in page and "市应急管理局值班室 口头报告" in page and "已签收" in page
    finally:
        await web.aclose()


async def test_the_console_intake_form_takes_the_times(api):
    from zoneinfo import ZoneInfo

    from tests.helpers import console_post

    local = datetime.now(ZoneInfo(get_settings().timezone)).replace(second=0, microsecond=0)
    form = {"source": "town", "category": "accident", "subtype": "建筑施工", "town_id": "330110001",
            "place": "青溪路88号工地", "summary": "脚手架坍塌", "reporting_unit": "第1街道", "reporter": "街道值班员",
            "occurred_at": f"{local - timedelta(minutes=60):%Y-%m-%dT%H:%M}",
            "known_at": f"{local - timedelta(minutes=50):%Y-%m-%dT%H:%M}",
            "reported_at": f"{local:%Y-%m-%dT%H:%M}"}
    web = await console_login(api.app, api.token)
    try:
        bad = await console_post(web, "/console/incidents", {**form, "known_at": "yesterday"})
        assert bad.status_code == 422 and "known_at" in bad.text
        before = await console_post(web, "/console/incidents", {**form, "known_at": form["reported_at"],
                                                               "reported_at": form["occurred_at"]})
        assert before.status_code == 422 and "reported_at" in before.text
        resp = await console_post(web, "/console/incidents", form)
        assert resp.status_code == 303, resp.text
        page = (await web.get(resp.headers["location"])).text
        assert "知悉时间" in page and "迟报 20 分钟" in page
    finally:
        await web.aclose()
