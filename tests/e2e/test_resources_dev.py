"""应急资源 and 灾情统计 end to end on the Temporal dev server, through the API, every wait of the shipped definitions
in seconds: the duty office enters a register (two teams, a depot with its stock); an incident comes in with its
first disaster figures and its written report and a follow-up raise them; the flood control plan is activated at
Ⅳ级, its force dispatch proposes the register's teams, fire rescue drafts with one of them (marked busy; a second
dispatch of it refused), emergency management approves; supplies are moved from the depot (requested, approved,
picked up, received: the stock goes down); the response ends (the team released) and the review it starts compiles
an event report that shows the resources used and the disaster figures summed over the reports."""
from __future__ import annotations

import uuid
from pathlib import Path

import httpx
import pytest

from api.app import create_app
from config import get_settings
from store.auth import create_token
from store.db import session_scope
from tests.factories import response_district
from tests.helpers import in_seconds, poll, use_definitions
from tests.workflows.activation_helpers import terminate_activations
from tests.workflows.reporting_helpers import terminate_incidents
from worker import build_worker

INCIDENT = {"source": "town", "category": "natural_disaster", "subtype": "内涝", "town_id": "330110001",
            "place": "第1街道青溪河沿岸", "summary": "青溪河水位上涨,沿岸低洼小区进水", "reporting_unit": "第1街道",
            "reporting_unit_id": "330110001", "reporter": "街道值班员",
            "figures": {"affected_population": 120, "relocated": 30}}
DRAFT = {"place": "第1街道青溪河沿岸", "what_happened": "低洼小区进水,群众转移", "measures": "沙袋围堵,抽排",
         "casualties": {"injured": 1}}


@pytest.fixture
def fast_definitions(tmp_path: Path, monkeypatch) -> Path:
    return use_definitions(tmp_path, monkeypatch, in_seconds, NIGHT_START="00:00", NIGHT_END="00:00")


@pytest.fixture
async def api(dev_env, db_url, fast_definitions):
    settings = get_settings()
    settings.task_queue = f"res-e2e-{uuid.uuid4().hex[:6]}"
    with session_scope() as s:
        people = response_district(s)
        tokens = {role: create_token(s, role, person_id=people.get(role), label=role)
                  for role in ("duty_cadre", "duty_chief", "leading_leader", "supervisor")}
        for key in ("D01.head", "D02.head", "D09.head"):
            tokens[key] = create_token(s, "commander", person_id=people[key], label=key)
    app = create_app(temporal_client=dev_env.client)
    async with build_worker(dev_env.client, task_queue=settings.task_queue), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        client.tokens, client.people = tokens, people  # type: ignore[attr-defined]
        try:
            yield client
        finally:
            await terminate_activations(dev_env.client)
            await terminate_incidents(dev_env.client)


async def call(api, method: str, path: str, who: str = "duty_cadre", status: int | tuple = (200, 201), **kw):
    r = await api.request(method, path, headers={"Authorization": f"Bearer {api.tokens[who]}"}, **kw)
    assert r.status_code in ((status,) if isinstance(status, int) else status), f"{method} {path}: {r.text}"
    return r.json() if "json" in r.headers.get("content-type", "") else r


async def get_or_none(api, path: str, **params):
    r = await api.get(path, headers={"Authorization": f"Bearer {api.tokens['supervisor']}"}, params=params)
    return r.json() if r.status_code == 200 else None


@pytest.mark.budget(120)  # real time: the review's 20-second summary deadline and the steps around it (estimated)
async def test_register_dispatch_supplies_and_disaster_figures_in_the_event_report(api):
    people = api.people
    # ---------------------------------------------------------------- the register, entered by the duty office
    await call(api, "POST", "/api/resources/teams", "duty_chief", 201, json={
        "id": "T-FL-A", "name": "第1街道防汛抢险队", "kind": "flood", "strength": 25, "town": "330110001",
        "duty_phone": "+8657186910001", "leader": people["D02.head"], "equipment": ["排涝泵", "冲锋舟"]})
    await call(api, "POST", "/api/resources/teams", "duty_chief", 201, json={
        "id": "T-FR-A", "name": "区消防救援大队特勤中队", "kind": "fire_rescue", "strength": 30, "town": "330110002",
        "leader": people["D09.head"]})
    await call(api, "POST", "/api/resources/depots", "duty_chief", 201, json={
        "id": "DEP-A", "name": "区级应急物资储备库", "town": "330110001", "stock": [
            {"item": "编织袋(沙袋)", "quantity": 5000, "unit": "条", "minimum": 1000},
            {"item": "救生衣", "quantity": 200, "unit": "件", "minimum": 100}]})
    r = await api.post("/api/resources/teams", headers={"Authorization": f"Bearer {api.tokens['supervisor']}"},
                       json={"id": "T-X", "name": "x", "kind": "flood", "strength": 1})
    assert r.status_code == 403  # a supervisor reads the register, the duty office keeps it

    # ---------------------------------------------------------------- the incident and its figures
    view = await call(api, "POST", "/api/incidents", json={**INCIDENT, "id": f"RES-{uuid.uuid4().hex[:6]}"})
    iid, ibase = view["incident_id"], f"/api/incidents/{view['incident_id']}"
    await call(api, "POST", f"{ibase}/verbal", json={"to_whom": "区政府总值班室", "by_whom": "值班干部戊"})
    await call(api, "POST", f"{ibase}/draft", json={**DRAFT, "figures": {"affected_population": 300, "relocated": 80,
                                                                          "houses_damaged": 5}})
    await call(api, "POST", f"{ibase}/review", "leading_leader", json={"decision": "approve"})
    await call(api, "POST", f"{ibase}/submit")
    r = await api.post(f"{ibase}/followups", headers={"Authorization": f"Bearer {api.tokens['duty_cadre']}"},
                       json={**DRAFT, "figures": {"affected_population": 250, "relocated": 80}})
    assert r.status_code == 422 and "核减" in r.text  # a smaller total needs its reason
    await call(api, "POST", f"{ibase}/followups", json={**DRAFT, "figures": {
        "affected_population": 500, "relocated": 150, "houses_damaged": 8, "direct_loss_wan": 35.5}})
    await call(api, "POST", f"{ibase}/review", "leading_leader", json={"decision": "approve"})
    await call(api, "POST", f"{ibase}/submit")
    incident = await get_or_none(api, ibase)
    assert incident["figures"]["affected_population"] == 500 and incident["figures"]["direct_loss_wan"] == 35.5

    # ---------------------------------------------------------------- Ⅳ级: dispatch from the register
    act = await call(api, "POST", "/api/activations", "duty_chief", 201, json={
        "plan": "flood_control", "level": "IV", "incident_id": iid, "reason": "青溪河超警戒水位"})
    aid, asubj = act["activation_id"], act["subject"]
    abase = f"/api/activations/{aid}"
    proposal = await call(api, "GET", f"{abase}/dispatches/proposal", "supervisor")
    proposed = {t["id"]: t for t in proposal["teams"]}
    assert {"T-FL-A", "T-FR-A"} <= set(proposed)
    assert [t["id"] for t in proposal["teams"]].index("T-FL-A") < [t["id"] for t in proposal["teams"]].index("T-FR-A")
    view = await call(api, "POST", f"{abase}/dispatches", "D09.head", json={
        "teams": ["T-FL-A"], "task": "青溪河沿岸低洼小区群众转移", "place": "第1街道青溪河沿岸"})
    assert [t["id"] for t in view["dispatches"][0]["teams"]] == ["T-FL-A"]
    team = await poll(lambda: get_or_none(api, "/api/resources/teams/T-FL-A"), lambda t: t and t["status"] == "busy",
                      what="the team marked busy")
    assert team["busy_with"]
    if view["dispatches"][0]["consult_required"]:  # a special period (防汛期, 森林防火期): the sector agrees first
        await call(api, "POST", f"{abase}/dispatches/1/consult", "D02.head", json={"agree": True, "opinion": "同意调派"})
    await call(api, "POST", f"{abase}/dispatches/1/decision", "D01.head", json={"decision": "approve"})
    r = await api.post(f"{abase}/dispatches", headers={"Authorization": f"Bearer {api.tokens['D09.head']}"},
                       json={"teams": ["T-FL-A"], "task": "再次调派"})
    assert r.status_code == 409 and "T-FL-A" in r.text  # busy: not dispatched twice

    # ---------------------------------------------------------------- 物资调拨
    sup = f"{abase}/supplies"
    req = await call(api, "POST", sup, "D01.head", 201, json={"depot_id": "DEP-A", "items": [
        {"item": "编织袋(沙袋)", "quantity": 1500}], "purpose": "沿岸围堵", "deliver_to": "青溪河大桥头"})
    seq = req["seq"]
    await call(api, "POST", f"{sup}/{seq}/decision", "duty_chief", json={"decision": "approve"})
    await call(api, "POST", f"{sup}/{seq}/pickup", "duty_cadre", json={"by_name": "第1街道 王强"})
    got = await call(api, "POST", f"{sup}/{seq}/receipt", "D01.head", json={"items": [
        {"item": "编织袋(沙袋)", "quantity": 1480}], "note": "破损20条"})
    assert got["state"] == "received"
    depot = await get_or_none(api, "/api/resources/depots/DEP-A")
    assert {x["item"]: x["quantity"] for x in depot["stock"]}["编织袋(沙袋)"] == 5000 - 1480

    # ---------------------------------------------------------------- the end, the review, the event report
    await call(api, "POST", f"{abase}/terminate", "D01.head", json={"reason": "水位回落,险情解除"})  # Ⅳ级指挥长
    await poll(lambda: get_or_none(api, "/api/resources/teams/T-FL-A"), lambda t: t and t["status"] == "available",
               what="the team released")
    await call(api, "POST", f"{ibase}/final", json={**DRAFT, "what_happened": "群众全部返回,积水排净", "figures": {
        "affected_population": 520, "relocated": 150, "houses_damaged": 8, "direct_loss_wan": 40}})
    await call(api, "POST", f"{ibase}/review", "leading_leader", json={"decision": "approve"})
    assert (await call(api, "POST", f"{ibase}/submit"))["status"] == "closed"
    rbase = f"/api/reviews/{iid}"
    await poll(lambda: get_or_none(api, rbase), lambda d: d and d["units"], what="the review opened")

    async def compiled():
        r = await api.post(f"{rbase}/compile", headers={"Authorization": f"Bearer {api.tokens['duty_cadre']}"})
        return r.json() if r.status_code == 200 else None  # 409 until the summaries' deadline has passed

    await poll(compiled, lambda d: d and d["status"] == "compiled", timeout=90, what="compiled after the deadline")
    report = await call(api, "GET", f"{rbase}/report.json")
    st = report["statistics"]
    [fig] = st["activations"]
    used = fig["resources"]
    assert [(t["team"], t["strength"], t["released_at"] is not None) for t in used["teams"]] == [("T-FL-A", 25, True)]
    assert used["supplies"] == [{"seq": seq, "depot": "区级应急物资储备库", "state": "received", "shortage": [],
                                 "items": [{"item": "编织袋(沙袋)", "unit": "条", "requested": 1500, "received": 1480}]}]
    [rep] = st["reporting"]
    figures = rep["figures"]
    assert [r["total"]["affected_population"] for r in figures["reports"]] == [120, 300, 500, 520]
    assert [r["added"]["affected_population"] for r in figures["reports"]] == [120, 180, 200, 20]
    assert figures["total"]["relocated"] == 150 and figures["total"]["direct_loss_wan"] == 40
    assert figures["total"]["injured"] == 1
    html = (await call(api, "GET", f"{rbase}/report.html")).text
    assert "第1街道防汛抢险队" in html and "编织袋(沙袋)" in html and "受灾人口" in html
    # every step of the register in the activation's trail, and the chain verifies
    kinds = [e["kind"] for e in (await call(api, "GET", f"/api/audit/{asubj}", "supervisor",
                                            params={"limit": 10000}))["events"]]
    assert {"activation.dispatch.team_busy", "activation.dispatch.team_released", "activation.supplies.requested",
            "activation.supplies.approved", "activation.supplies.picked_up", "activation.supplies.received"} <= set(kinds)
    assert (await call(api, "GET", "/api/audit/verify", "supervisor", params={"subject": asubj}))["ok"]
