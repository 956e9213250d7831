"""`/api/resources/...`: every role reads the register with filters by town and kind; the duty office creates and
updates records, checked by the import's rules (422 naming the field), 409 for an id that exists, 404 for one that
does not; the stock alerts and a depot's flagged lines."""
from __future__ import annotations

from datetime import date

import httpx
import pytest

from config import get_settings
from store.auth import create_token
from store.db import session_scope
from store.directory_import import load_demo_if_empty
from store.resources import RescueTeam, StockLine
from store.resources_import import load_demo_if_empty as load_register


@pytest.fixture
async def web(db_url, monkeypatch):
    monkeypatch.setenv("YINGJI_ADMIN_TOKEN", "duty-admin")
    monkeypatch.setenv("YINGJI_RUN_SCHEDULER", "false")
    # the alerts are counted on a fixed day: the demo's drinking water expires on 2027-08-31, one more alert after
    monkeypatch.setattr("api.services.resources.today", lambda tz: date(2026, 12, 5))
    get_settings.cache_clear()
    with session_scope() as s:
        load_demo_if_empty(s, today=date(2026, 7, 1))
        load_register(s)
        tokens = {role: create_token(s, role, label=role) for role in ("duty_staff", "supervisor", "commander")}
    from api.app import create_app

    app = create_app(temporal_client=object())  # the register never reaches Temporal
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        client.as_role = lambda role: {"Authorization": f"Bearer {tokens[role]}"}
        yield client


TEAM = {"id": "T-NEW", "name": "白沙镇抢险队", "kind": "flood", "strength": 15, "town": "330110008",
        "duty_phone": "0571-86918888", "leader": "qx0688", "equipment": ["排涝泵"]}


async def test_reading_with_filters(web):
    h = web.as_role("commander")
    r = await web.get("/api/resources/teams", params={"kind": "fire_rescue"}, headers=h)
    assert r.status_code == 200, r.text
    assert [t["id"] for t in r.json()] == ["T-FR-01", "T-FR-02"]
    r = await web.get("/api/resources/teams", params={"town": "330110004", "kind": "militia"}, headers=h)
    assert [(t["id"], t["status"], t["strength"]) for t in r.json()] == [("T-MI-04", "available", 24)]
    r = await web.get("/api/resources/shelters", params={"town": "330110001"}, headers=h)
    assert [(x["name"], x["capacity"]) for x in r.json()] == [("青溪中学体育馆", 800)]
    r = await web.get("/api/resources/teams", params={"kind": "swimming"}, headers=h)
    assert r.status_code == 422 and "swimming" in r.json()["detail"]
    r = await web.get("/api/resources/depots", params={"kind": "x"}, headers=h)
    assert r.status_code == 422 and "depots have no kind" in r.json()["detail"]
    r = await web.get("/api/resources/depots/DEP-01", headers=h)
    assert r.status_code == 200
    depot = r.json()
    flags = {x["item"]: x["flags"] for x in depot["stock"]}
    assert flags["帐篷"] == ["below_minimum"] and flags["方便食品"] == ["expired"] and flags["救生衣"] == []
    assert depot["alerts"] == 2
    assert (await web.get("/api/resources/experts/X-99", headers=h)).status_code == 404


async def test_stock_alerts(web):
    r = await web.get("/api/resources/alerts", headers=web.as_role("supervisor"))
    assert r.status_code == 200
    got = {(a["depot_id"], a["item"]): a["flags"] for a in r.json()["alerts"]}
    assert got == {("DEP-01", "帐篷"): ["below_minimum"], ("DEP-01", "方便食品"): ["expired"],
                   ("DEP-02", "编织袋(沙袋)"): ["below_minimum"]}
    r = await web.get("/api/resources/alerts", params={"town": "330110005"}, headers=web.as_role("supervisor"))
    assert r.json()["alerts"] == []


async def test_the_duty_office_creates_and_updates(web):
    h = web.as_role("duty_staff")
    r = await web.post("/api/resources/teams", json=TEAM, headers=h)
    assert r.status_code == 201, r.text
    assert (r.json()["duty_phone"], r.json()["status"], r.json()["town_id"]) == ("+8657186918888", "available", "330110008")
    assert (await web.post("/api/resources/teams", json=TEAM, headers=h)).status_code == 409
    r = await web.put("/api/resources/teams/T-NEW", json={**TEAM, "strength": 20, "readiness": "partial"}, headers=h)
    assert r.status_code == 200 and (r.json()["strength"], r.json()["readiness"]) == (20, "partial")
    with session_scope() as s:
        assert s.get(RescueTeam, "T-NEW").strength == 20
    r = await web.put("/api/resources/teams/T-OTHER", json=TEAM, headers=h)
    assert r.status_code == 422 and "T-OTHER" in r.json()["detail"]
    r = await web.put("/api/resources/teams/T-NONE", json={**TEAM, "id": "T-NONE"}, headers=h)
    assert r.status_code == 404
    r = await web.post("/api/resources/teams", json={**TEAM, "id": "T-BAD", "town": "D01", "leader": "nobody"}, headers=h)
    assert r.status_code == 422
    assert r.json()["detail"] == "town: 'D01' is a department, not a town; leader: unknown person 'nobody'"
    r = await web.post("/api/resources/teams", json={**TEAM, "id": "T-BAD2", "strength": -1}, headers=h)
    assert r.status_code == 422 and "strength" in r.text
    # a depot's update replaces its stock lines: the flags follow
    depot = (await web.get("/api/resources/depots/DEP-02", headers=h)).json()
    body = {k: depot[k] for k in ("id", "name", "place")} | {"town": depot["town_id"], "stock": [
        {"item": "编织袋(沙袋)", "quantity": 6000, "unit": "条", "minimum": 5000}]}
    r = await web.put("/api/resources/depots/DEP-02", json=body, headers=h)
    assert r.status_code == 200, r.text
    assert [(x["item"], x["flags"]) for x in r.json()["stock"]] == [("编织袋(沙袋)", [])]
    with session_scope() as s:
        from sqlmodel import select
        assert len(s.exec(select(StockLine).where(StockLine.depot_id == "DEP-02")).all()) == 1


async def test_only_the_duty_office_edits(web):
    for role in ("supervisor", "commander"):
        r = await web.post("/api/resources/teams", json=TEAM, headers=web.as_role(role))
        assert r.status_code == 403 and role in r.json()["detail"]


async def test_console_pages_list_filter_and_alert_in_chinese(web, db_url):
    from api.console import auth
    from store.auth import lookup_token

    settings = get_settings()
    with session_scope() as s:
        token = create_token(s, "duty_staff", label="值班员")
    with session_scope(write=False) as s:
        cookie = auth.session_cookie(settings, {"m": "token", "t": lookup_token(s, token).id})
    h = {"cookie": f"{auth.COOKIE}={cookie}"}
    r = await web.get("/console/resources", headers=h)
    assert r.status_code == 200, r.text
    assert "区消防救援大队特勤中队" in r.text and "综合性消防救援" in r.text and "在岗待命" in r.text
    assert "罗文" not in r.text  # (an expert, not a team)
    r = await web.get("/console/resources", params={"section": "teams", "town": "330110004", "kind": "militia"}, headers=h)
    assert r.status_code == 200
    assert 'data-record="T-MI-04"' in r.text and 'data-record="T-FR-02"' not in r.text and "西山镇" in r.text
    assert "qx0672" not in r.text  # the leader by name, never by id
    r = await web.get("/console/resources", params={"section": "teams", "kind": "swimming"}, headers=h)
    assert r.status_code == 422 and "swimming" in r.text
    r = await web.get("/console/resources", params={"section": "experts", "kind": "geology"}, headers=h)
    assert "冯雅琴" in r.text and "地质灾害" in r.text and "钱立群" not in r.text
    for section in ("equipment", "depots", "shelters"):
        r = await web.get("/console/resources", params={"section": section}, headers=h)
        assert r.status_code == 200 and 'data-record="' in r.text, section
    r = await web.get("/console/resources", params={"section": "depots"}, headers=h)
    assert "低于储备下限" in r.text and "已过期" in r.text
    r = await web.get("/console/resources/alerts", headers=h)
    assert r.status_code == 200
    assert r.text.count('data-depot="') == 3 and "帐篷" in r.text and "方便食品" in r.text and "已过期" in r.text
    r = await web.get("/console/resources/alerts", params={"town": "330110005"}, headers=h)
    assert "目前没有库存预警" in r.text


async def test_edits_are_audited_with_who_and_what_changed(web):
    """Each create and update: an event under `resources` naming the caller and each changed field; a PUT that
    changes nothing writes none; a busy team set available also records its release."""
    from datetime import UTC, datetime

    from sqlmodel import select

    from store.audit import AuditEvent, verify

    def trail() -> list[AuditEvent]:
        with session_scope(write=False) as s:
            return list(s.exec(select(AuditEvent).where(AuditEvent.subject == "resources").order_by(AuditEvent.seq)))

    h = web.as_role("duty_staff")
    staff = "duty_staff:duty_staff"  # the token's role and label (it names no person)
    assert (await web.post("/api/resources/teams", json=TEAM, headers=h)).status_code == 201
    [created] = trail()
    assert created.kind == "resources.created" and created.actor == staff
    assert created.payload["id"] == "T-NEW" and created.payload["record"]["strength"] == 15
    assert (await web.put("/api/resources/teams/T-NEW", json={**TEAM, "strength": 20}, headers=h)).status_code == 200
    updated = trail()[-1]
    assert updated.kind == "resources.updated" and updated.actor == staff
    assert updated.payload["changes"] == {"strength": {"before": 15, "after": 20}}
    assert (await web.put("/api/resources/teams/T-NEW", json={**TEAM, "strength": 20}, headers=h)).status_code == 200
    assert len(trail()) == 2, "nothing changed: no event"
    with session_scope() as s:  # dispatched (as the activation's reserve marks it)
        t = s.get(RescueTeam, "T-NEW")
        t.status, t.busy_with, t.busy_since = "busy", "activation-X/dispatch/1/v1", datetime.now(UTC)
    r = await web.put("/api/resources/teams/T-NEW", json={**TEAM, "strength": 20, "status": "available"}, headers=h)
    assert r.status_code == 200 and r.json()["status"] == "available"
    kinds = [e.kind for e in trail()]
    assert kinds[-2:] == ["resources.updated", "resources.team_released"]
    released = trail()[-1].payload
    assert released["team"] == "T-NEW" and released["busy_with"] == "activation-X/dispatch/1/v1"
    assert trail()[-2].payload["changes"]["status"] == {"before": "busy", "after": "available"}
    depot = (await web.get("/api/resources/depots/DEP-02", headers=h)).json()
    body = {k: depot[k] for k in ("id", "name", "place")} | {"town": depot["town_id"], "stock": [
        {"item": "编织袋(沙袋)", "quantity": 6000, "unit": "条", "minimum": 5000}]}
    assert (await web.put("/api/resources/depots/DEP-02", json=body, headers=h)).status_code == 200
    stock = trail()[-1].payload["changes"]["stock"]
    assert stock["after"] == [{"item": "编织袋(沙袋)", "quantity": 6000.0, "unit": "条", "minimum": 5000.0, "expiry": None}]
    with session_scope(write=False) as s:
        assert verify(s, "resources").ok
