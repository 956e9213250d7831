"""The incident reporting chain through the API (httpx → create_app) on the time-skipping server.

Roles and order are refused with 403/409 and the procedure's reason; bad input gets a 4xx
naming the field; the compliance figures of GET /api/incidents/{id} agree with the audit trail.
"""
from __future__ import annotations

import uuid
from datetime import timedelta

import httpx
import pytest

from api.app import create_app
from config import get_settings
from store.auth import create_token
from store.db import session_scope
from tests.factories import small_district

from tests.workflows.reporting_helpers import terminate_incidents
from worker import build_worker

ROLES = ("duty_staff", "duty_cadre", "duty_chief", "leading_leader", "commander", "supervisor")
INCIDENT = {"source": "12345", "category": "accident", "subtype": "建筑施工", "town_id": "330110001",
            "place": "青溪路88号工地", "summary": "脚手架坍塌,2人受伤", "casualties": {"injured": 2},
            "reporting_unit": "第1街道", "reporter": "街道值班员", "reporter_phone": "13800138000"}
DRAFT = {"place": "青溪路88号工地", "what_happened": "脚手架坍塌,2人受伤送医", "measures": "现场已封控",
         "casualties": {"injured": 2}}


@pytest.fixture
async def api(env, db_url, monkeypatch):
    monkeypatch.setenv("YINGJI_RUN_SCHEDULER", "false")
    get_settings.cache_clear()
    settings = get_settings()
    settings.task_queue = f"inc-{uuid.uuid4().hex[:6]}"
    with session_scope() as s:
        people = small_district(s)
        persons = {"duty_cadre": people["duty_cadre"], "leading_leader": people["leading_leader"],
                   "duty_chief": people["duty_chief"]}
        tokens = {role: create_token(s, role, person_id=persons.get(role), label=role) for role in ROLES}
    app = create_app(temporal_client=env.client)
    async with build_worker(env.client, task_queue=settings.task_queue), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        client.tokens, client.people, client.env = tokens, people, env  # type: ignore[attr-defined]
        yield client
        await terminate_incidents(env.client)


def auth(api, role: str = "duty_cadre") -> dict:
    return {"Authorization": f"Bearer {api.tokens[role]}"}


async def post(api, path: str, role: str, json: dict | None = None, status: int = 200, words: str = "") -> dict:
    r = await api.post(path, headers=auth(api, role), json=json if json is not None else {})
    assert r.status_code == status, r.text
    if words:
        assert words in r.json()["detail"], r.json()["detail"]
    return r.json()


async def test_the_whole_chain_through_the_api(api):
    r = await api.post("/api/incidents", headers=auth(api), json={**INCIDENT, "id": "12345-0001"})
    assert r.status_code == 201, r.text
    view = r.json()
    iid, base = view["incident_id"], f"/api/incidents/{view['incident_id']}"
    assert iid == "12345-0001" and view["workflow_id"] == "incident-12345-0001"
    due = {d["key"]: d for d in view["deadlines"]}
    assert set(due) == {"verbal", "written"}
    again = await api.post("/api/incidents", headers=auth(api), json={**INCIDENT, "id": "12345-0001"})
    assert again.status_code == 200 and again.json()["duplicate"] is True

    await api.env.sleep(timedelta(minutes=40))  # the verbal report is 10 minutes late
    view = await post(api, f"{base}/verbal", "duty_staff", {"to_whom": "区政府总值班室 李值班", "by_whom": "值班员"})
    verbal = next(d for d in view["deadlines"] if d["key"] == "verbal")
    assert verbal["late_by_s"] >= 10 * 60
    await post(api, f"{base}/verbal", "duty_staff", {"to_whom": "x", "by_whom": "y"}, 409, "recorded already")

    await post(api, f"{base}/draft", "duty_cadre", DRAFT)
    await post(api, f"{base}/review", "duty_cadre", {"decision": "approve"}, 403, "may not review")
    await post(api, f"{base}/draft", "leading_leader", DRAFT, 403, "may not draft")
    await post(api, f"{base}/review", "leading_leader", {"decision": "return"}, 422, "comments")
    await post(api, f"{base}/review", "leading_leader", {"decision": "return", "comments": "补充伤者去向"})
    await post(api, f"{base}/submit", "duty_cadre", None, 409, "returned with comments")
    await post(api, f"{base}/draft", "duty_cadre", {**DRAFT, "what_happened": "2名伤者已送区人民医院"})
    await post(api, f"{base}/review", "leading_leader", {"decision": "approve", "version": 2})
    await post(api, f"{base}/draft", "duty_cadre", DRAFT, 409, "cannot be edited")
    view = await post(api, f"{base}/submit", "duty_chief")
    assert view["reports"][0]["state"] == "submitted"

    detail = await wait_for_receipts(api, base, 0, 2)
    assert {x["recipient_id"] for x in detail["reports"][0]["receipts"]} == {"committee_office", "government_office"}
    await post(api, f"{base}/acks/rcpt:committee_office", "duty_cadre", {"note": "电话确认已收到"})
    await wait_for_api(api, base, lambda d: any(x["status"] == "confirmed" for x in d["reports"][0]["receipts"]))

    await post(api, f"{base}/followups", "duty_cadre", {**DRAFT, "what_happened": "伤者已脱离危险"})
    await post(api, f"{base}/review", "leading_leader", {"decision": "approve"})
    await post(api, f"{base}/submit", "duty_cadre")
    await post(api, f"{base}/final", "duty_cadre", {**DRAFT, "what_happened": "处置完毕"})
    await post(api, f"{base}/review", "leading_leader", {"decision": "approve"})
    view = await post(api, f"{base}/submit", "duty_cadre")
    assert view["status"] == "closed"
    await post(api, f"{base}/followups", "duty_cadre", DRAFT, 409, "closed")

    r = await api.get(base, headers=auth(api, "supervisor"))
    detail = r.json()
    assert detail["status"] == "closed" and [x["label"] for x in detail["reports"]] == ["书面报告", "续报一", "终报"]
    assert [len(x["versions"]) for x in detail["reports"]] == [2, 1, 1]
    assert detail["reports"][0]["versions"][0]["decision"] == "return"
    states = {d["key"]: d["state"] for d in detail["deadlines"]}
    assert states == {"verbal": "late", "written": "on_time", "followup_1": "on_time", "followup_2": "on_time"}
    # the compliance figures agree with the audit trail
    audit = (await api.get("/api/audit", params={"subject": iid, "kind": "report."},
                           headers=auth(api, "supervisor"))).json()
    late = [e for e in audit if e["kind"].endswith(".late")]
    assert [(e["kind"], e["payload"]["late_by_s"]) for e in late] == [("report.verbal.late", verbal["late_by_s"])]
    assert detail["compliance"]["late_by_s"] == {"verbal": verbal["late_by_s"]}
    assert detail["late_marks"][0]["late_by_min"] == -(-verbal["late_by_s"] // 60)
    assert detail["compliance"]["late"] == 1 and detail["compliance"]["on_time"] == 3
    assert not [e for e in audit if e["kind"] == "report.refused"]  # refusals are counted apart (store/refusals.py)
    refused = (await api.get("/api/audit/refusals", params={"subject": iid}, headers=auth(api, "supervisor"))).json()
    assert {r["status"] for r in refused} == {403, 409, 422}
    assert (await api.get("/api/audit/verify", params={"subject": iid}, headers=auth(api, "supervisor"))).json()["ok"]

    listed = (await api.get("/api/incidents", headers=auth(api, "commander"))).json()
    assert [x["id"] for x in listed] == [iid] and listed[0]["late"] == 1 and listed[0]["status"] == "closed"


async def test_a_death_calls_the_sector_leader_and_a_proxy_ack_reaches_the_chain(api):
    r = await api.post("/api/incidents", headers=auth(api), json={**INCIDENT, "casualties": {"deaths": 1}})
    assert r.status_code == 201, r.text
    base = f"/api/incidents/{r.json()['incident_id']}"
    leader = api.people["deputy_head"]
    detail = await wait_for_api(api, base, lambda d: d["triggers"])
    assert detail["triggers"][0]["id"] == "deaths_leader_to_scene"
    await post(api, f"{base}/acks/{leader}", "duty_chief", {"note": "电话确认已出发"})
    detail = await wait_for_api(api, base, lambda d: d["triggers"][0]["state"] == "acknowledged")
    assert detail["triggers"][0]["acknowledged_by"] == leader
    await post(api, f"{base}/acks/p-nobody", "duty_chief", {"note": "x"}, 404, "nobody")


@pytest.mark.parametrize("change, status, words", [
    ({"source": None}, 422, "source"),
    ({"source": "telegram"}, 422, "source"),
    ({"category": "weather"}, 422, "category"),
    ({"casualties": {"deaths": -1}}, 422, "casualties.deaths"),
    ({"town_id": "999"}, 422, "town_id"),
    ({"town_id": "330110001001"}, 422, "town_id"),  # a village, not a town
    ({"reporting_unit_id": "D99"}, 422, "reporting_unit_id"),
    ({"reporter_phone": "12"}, 422, "reporter_phone"),
    ({"rules": "nowhere"}, 422, "rules"),
    ({"received_at": "2026-07-01T03:00:00"}, 422, "received_at"),
    ({"place": ""}, 422, "place"),
    ({"id": "bad id!"}, 422, "id"),
])
async def test_bad_incidents_get_a_4xx_naming_the_field(api, change, status, words):
    body = {**INCIDENT, **change}
    body = {k: v for k, v in body.items() if v is not None}
    r = await api.post("/api/incidents", headers=auth(api), json=body)
    assert r.status_code == status and words in r.json()["detail"], r.text


async def test_tokens_roles_and_unknown_incidents(api):
    assert (await api.post("/api/incidents", json=INCIDENT)).status_code == 401
    r = await api.post("/api/incidents", headers=auth(api, "supervisor"), json=INCIDENT)
    assert r.status_code == 403 and "supervisor" in r.json()["detail"]
    assert (await api.get("/api/incidents/nope", headers=auth(api, "supervisor"))).status_code == 404
    await post(api, "/api/incidents/nope/verbal", "duty_cadre", {"to_whom": "x", "by_whom": "y"}, 404, "no incident")
    r = await api.get("/api/incidents", params={"status": "bogus"}, headers=auth(api))
    assert r.status_code == 422 and "status" in r.json()["detail"]
    r = await api.post("/api/incidents", headers=auth(api), json=INCIDENT)
    base = f"/api/incidents/{r.json()['incident_id']}"
    await post(api, f"{base}/draft", "duty_cadre", {**DRAFT, "measures": ""}, 422, "measures")
    await post(api, f"{base}/review", "leading_leader", {"decision": "maybe"}, 422, "decision")
    await post(api, f"{base}/submit", "duty_cadre", None, 409, "nothing to submit")
    await post(api, f"{base}/verbal", "duty_cadre", {"to_whom": "x", "by_whom": "y", "at": "2026-01-01T00:00:00"},
               422, "time zone")


async def wait_for_api(api, base: str, predicate, what: str = "state"):
    async def fetch():
        return (await api.get(base, headers=auth(api, "supervisor"))).json()

    import asyncio

    for _ in range(200):
        detail = await fetch()
        if predicate(detail):
            return detail
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}: {detail}")


async def wait_for_receipts(api, base: str, seq: int, n: int):
    return await wait_for_api(api, base, lambda d: len(d["reports"][seq]["receipts"]) >= n, "receipts")



