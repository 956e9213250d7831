"""物资调拨 through `/api/activations/{id}/supplies`: requested → approved by the duty office (not the one who asked)
→ picked up → received with quantities, the depot's stock down by what was received; every step an audit event
under the activation's subject; a request above the stock records the shortage and proposes the city reinforcement
request, which the reinforcement route's body takes as it is; refusals and their reasons."""
from __future__ import annotations

from datetime import UTC, date, datetime

import httpx
import pytest
from sqlmodel import select

from config import get_settings
from store.activations import Activation
from store.audit import AuditEvent, verify
from store.auth import create_token
from store.db import session_scope
from store.directory_import import load_demo_if_empty
from store.replay.labels import KIND_NAMES
from store.resources import StockLine
from store.resources_import import load_demo_if_empty as load_register

AID = "INC-S1-flood_control"
SUBJECT = f"activation/{AID}"


@pytest.fixture
async def web(db_url, monkeypatch):
    monkeypatch.setenv("YINGJI_RUN_SCHEDULER", "false")
    get_settings.cache_clear()
    with session_scope() as s:
        load_demo_if_empty(s, today=date(2026, 7, 1))
        load_register(s)
        s.add(Activation(id=AID, workflow_id=f"activation-{AID}", incident_id="INC-S1", plan_id="flood_control",
                         plan_version="test", level="IV", activated_by="qx0100", activated_at=datetime.now(UTC)))
        tokens = {"staff": create_token(s, "duty_staff", person_id="qx0207", label="staff"),
                  "chief": create_token(s, "duty_chief", person_id="qx0201", label="chief"),
                  "commander": create_token(s, "commander", person_id="qx0100", label="commander"),
                  "supervisor": create_token(s, "supervisor", label="supervisor")}
    from api.app import create_app

    app = create_app(temporal_client=object())  # 物资调拨 never reaches Temporal
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        client.h = lambda who: {"Authorization": f"Bearer {tokens[who]}"}
        yield client


def stock(depot: str, item: str) -> float:
    with session_scope(write=False) as s:
        return s.exec(select(StockLine).where(StockLine.depot_id == depot, StockLine.item == item)).one().quantity


def kinds() -> list[str]:
    with session_scope(write=False) as s:
        return [e.kind for e in s.exec(select(AuditEvent).where(AuditEvent.subject == SUBJECT).order_by(AuditEvent.seq))]


BASE = f"/api/activations/{AID}/supplies"


async def test_requested_approved_picked_up_received_and_the_stock_goes_down(web):
    r = await web.post(BASE, headers=web.h("commander"), json={
        "depot_id": "DEP-01", "items": [{"item": "编织袋(沙袋)", "quantity": 3000}, {"item": "救生衣", "quantity": 100}],
        "purpose": "西山镇堤防加固", "deliver_to": "西山镇大桥头"})
    assert r.status_code == 201, r.text
    body = r.json()
    assert (body["seq"], body["state"], body["reinforcement_proposal"]) == (1, "requested", None)
    assert body["requested_by"] == "qx0100" and body["depot_name"] == "区级应急物资储备库"

    # the duty office approves, never the one who asked; quantities at most the stock, at most what was asked
    r = await web.post(f"{BASE}/1/decision", headers=web.h("chief"), json={"decision": "approve", "items": [
        {"item": "救生衣", "quantity": 101}]})
    assert r.status_code == 422 and "above the 100 asked" in r.json()["detail"]
    r = await web.post(f"{BASE}/1/pickup", headers=web.h("staff"), json={"by_name": "西山镇 王强"})
    assert r.status_code == 409 and "only an approved one" in r.json()["detail"]
    r = await web.post(f"{BASE}/1/decision", headers=web.h("chief"), json={"decision": "approve", "items": [
        {"item": "救生衣", "quantity": 80}], "comments": "救生衣先调80件"})
    assert r.status_code == 200, r.text
    assert [(x["item"], x["approved"]) for x in r.json()["items"]] == [("编织袋(沙袋)", 3000), ("救生衣", 80)]
    assert stock("DEP-01", "救生衣") == 600  # not yet: the stock goes down on receipt
    r = await web.post(f"{BASE}/1/decision", headers=web.h("chief"), json={"decision": "approve"})
    assert r.status_code == 409

    r = await web.post(f"{BASE}/1/pickup", headers=web.h("staff"), json={"by_name": "西山镇 王强"})
    assert r.status_code == 200 and r.json()["state"] == "picked_up" and r.json()["picked_up_by_name"] == "西山镇 王强"
    r = await web.post(f"{BASE}/1/receipt", headers=web.h("commander"), json={"items": [
        {"item": "编织袋(沙袋)", "quantity": 3000}, {"item": "救生衣", "quantity": 81}]})
    assert r.status_code == 422 and "above the 80 approved" in r.json()["detail"]
    r = await web.post(f"{BASE}/1/receipt", headers=web.h("commander"), json={"items": [
        {"item": "编织袋(沙袋)", "quantity": 2950}, {"item": "救生衣", "quantity": 80}], "note": "破损50条"})
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "received"
    assert [(x["item"], x["received"]) for x in r.json()["items"]] == [("编织袋(沙袋)", 2950), ("救生衣", 80)]
    assert stock("DEP-01", "编织袋(沙袋)") == 20000 - 2950 and stock("DEP-01", "救生衣") == 520
    assert (await web.post(f"{BASE}/1/receipt", headers=web.h("commander"), json={"items": [
        {"item": "救生衣", "quantity": 1}]})).status_code == 409  # once

    assert kinds() == ["activation.supplies.requested", "activation.supplies.approved", "activation.supplies.picked_up",
                       "activation.supplies.received"]
    assert all(k in KIND_NAMES for k in kinds())
    with session_scope(write=False) as s:
        assert verify(s, SUBJECT).ok
        received = s.exec(select(AuditEvent).where(AuditEvent.kind == "activation.supplies.received")).one()
        assert received.actor == "qx0100" and received.payload["items"][0]["stock_after"] == 17050
    listed = (await web.get(BASE, headers=web.h("supervisor"))).json()
    assert [(x["seq"], x["state"]) for x in listed] == [(1, "received")]
    from store.replay import load_events
    from store.report import render
    from store.review.activation_stats import resources_used

    with session_scope(write=False) as s:  # the event report's 应急资源: what was asked and what arrived
        used = resources_used(load_events(s, SUBJECT))
    assert used["supplies"] == [{"seq": 1, "depot": "区级应急物资储备库", "state": "received", "shortage": [], "items": [
        {"item": "编织袋(沙袋)", "unit": "条", "requested": 3000, "received": 2950},
        {"item": "救生衣", "unit": "件", "requested": 100, "received": 80}]}]
    from store.review.stats import statistics

    with session_scope(write=False) as s:
        st = statistics({SUBJECT: load_events(s, SUBJECT)})
    assert st["activations"][0]["resources"] == used
    _, html, _ = render({"incident_id": "INC-S1", "title": "x", "version": 1, "final": False, "compiled_at": "2026-12-05",
                         "incident": {"title": "x"}, "timeline": [], "units": [], "signoff": None, "returns": [],
                         "lessons": {"shortcomings": [], "suggestions": []}, "names": {}, "statistics": st}, pdf=False)
    assert "物资调拨1次" in html and "<td>编织袋(沙袋)</td><td class=\"n\">3000 条</td><td class=\"n\">2950</td>" in html
    r = await web.get(f"/api/audit/{SUBJECT}", headers=web.h("supervisor"))  # the trail lists them, in words
    assert r.status_code == 200, r.text
    r = await web.get(f"/api/audit/{SUBJECT}/replay", headers=web.h("supervisor"))
    assert r.status_code < 500, r.text


async def test_the_one_who_asked_may_not_approve_and_a_refusal_needs_a_reason(web):
    r = await web.post(BASE, headers=web.h("staff"), json={"depot_id": "DEP-02", "items": [{"item": "手电筒", "quantity": 10}]})
    assert r.status_code == 201
    r = await web.post(f"{BASE}/1/decision", headers=web.h("staff"), json={"decision": "approve"})
    assert r.status_code == 403 and "may not approve" in r.json()["detail"]
    r = await web.post(f"{BASE}/1/decision", headers=web.h("commander"), json={"decision": "approve"})
    assert r.status_code == 403  # a commander is not the duty office
    r = await web.post(f"{BASE}/1/decision", headers=web.h("chief"), json={"decision": "refuse"})
    assert r.status_code == 422 and "why" in r.json()["detail"]
    r = await web.post(f"{BASE}/1/decision", headers=web.h("chief"), json={"decision": "refuse", "comments": "另有调配"})
    assert r.status_code == 200 and r.json()["state"] == "refused"
    assert kinds() == ["activation.supplies.requested", "activation.supplies.refused"]


async def test_a_shortage_proposes_the_city_reinforcement_request(web):
    r = await web.post(BASE, headers=web.h("staff"), json={"depot_id": "DEP-01", "items": [
        {"item": "帐篷", "quantity": 200}, {"item": "棉被", "quantity": 100}]})
    assert r.status_code == 201, r.text
    proposal = r.json()["reinforcement_proposal"]
    assert proposal["post"] == f"/api/activations/{AID}/reinforcements"
    assert proposal["body"] == {"kind": "supplies", "quantity": "帐篷80顶",
                                "detail": "区级应急物资储备库库存不足,缺口:帐篷80顶。请求市级调拨支援。"}
    assert [(x["item"], x["shortage"]) for x in r.json()["items"]] == [("帐篷", 80), ("棉被", 0)]
    assert kinds() == ["activation.supplies.requested", "activation.supplies.shortage"]
    from workflows.activation import ReinforceIn  # the proposal is a body the reinforcement route takes as it is
    ReinforceIn(actor="x", role="duty_chief", **proposal["body"])
    # approving: at most the stock (120 tents)
    r = await web.post(f"{BASE}/1/decision", headers=web.h("chief"), json={"decision": "approve", "items": [
        {"item": "帐篷", "quantity": 150}]})
    assert r.status_code == 409 and "库存仅120顶" in r.json()["detail"]
    r = await web.post(f"{BASE}/1/decision", headers=web.h("chief"), json={"decision": "approve"})
    assert [(x["item"], x["approved"]) for x in r.json()["items"]] == [("帐篷", 120), ("棉被", 100)]


async def test_bad_requests_are_named(web):
    h = web.h("staff")
    r = await web.post(BASE, headers=h, json={"depot_id": "DEP-X", "items": [{"item": "帐篷", "quantity": 1}]})
    assert r.status_code == 422 and "no depot 'DEP-X'" in r.json()["detail"]
    r = await web.post(BASE, headers=h, json={"depot_id": "DEP-02", "items": [{"item": "帐篷", "quantity": 1}]})
    assert r.status_code == 422 and "holds no 帐篷" in r.json()["detail"]
    r = await web.post(BASE, headers=h, json={"depot_id": "DEP-02", "items": [{"item": "救生衣", "quantity": 0}]})
    assert r.status_code == 422
    r = await web.post(BASE, headers=h, json={"depot_id": "DEP-02", "items": [
        {"item": "救生衣", "quantity": 1}, {"item": "救生衣", "quantity": 2}]})
    assert r.status_code == 422 and "each item once" in r.json()["detail"]
    r = await web.post("/api/activations/NOPE/supplies", headers=h, json={"depot_id": "DEP-02", "items": [
        {"item": "救生衣", "quantity": 1}]})
    assert r.status_code == 404
    assert (await web.post(f"{BASE}/9/pickup", headers=h, json={"by_name": "x"})).status_code == 404
    with session_scope() as s:
        s.get(Activation, AID).status = "terminated"
    r = await web.post(BASE, headers=h, json={"depot_id": "DEP-02", "items": [{"item": "救生衣", "quantity": 1}]})
    assert r.status_code == 409 and "has ended" in r.json()["detail"]
