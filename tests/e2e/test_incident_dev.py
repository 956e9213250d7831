"""End to end on the Temporal dev server, through the API, with the simulator gateway and real time.

The district rules with every time limit shortened to seconds: the verbal report comes late
(the duty chief is called, the late mark is written), the written report goes through a returned
draft to approval, the recipients confirm receipt by SMS reply (or do not, and the duty cadre is
told), the final report closes the chain, and the figures of GET /api/incidents/{id} agree with
the audit trail.
"""
from __future__ import annotations

import re
import uuid
from pathlib import Path

import httpx
import pytest

from api.app import create_app
from config import get_settings
from store.auth import create_token
from store.db import session_scope
from tests.factories import small_district
from tests.helpers import poll, use_definitions
from tests.workflows.reporting_helpers import terminate_incidents
from worker import build_worker

DRAFT = {"place": "青溪路88号工地", "what_happened": "脚手架坍塌,2人受伤送医", "measures": "现场已封控",
         "casualties": {"injured": 2}}


@pytest.fixture
def fast_rules(tmp_path: Path, monkeypatch) -> Path:
    def edit(path: Path, text: str) -> str:
        if path.as_posix() != "reporting/district.yaml":
            return text
        text = text.replace("deadlines: {verbal: 30m, written: 1h}", "deadlines: {verbal: 5s, written: 40s}")
        text = text.replace("reminder_before: 10m", "reminder_before: 2s")
        text = re.sub(r"followup_every: \{[^}]*\}", "followup_every: {I: 1m, II: 1m, III: 1m, IV: 1m}", text)
        return re.sub(r"wait_ack: \d+m", "wait_ack: 2s", text)

    return use_definitions(tmp_path, monkeypatch, edit)


@pytest.mark.budget(60)  # real time: the reporting chain's limits in seconds (estimated)
async def test_reporting_chain_end_to_end(dev_env, db_url, fast_rules):
    with session_scope() as s:
        people = small_district(s)
        tokens = {role: create_token(s, role, person_id=people.get(role), label=role)
                  for role in ("duty_cadre", "duty_chief", "leading_leader", "supervisor")}
    settings = get_settings()
    tq = settings.task_queue = f"e2e-inc-{uuid.uuid4().hex[:6]}"
    app = create_app(temporal_client=dev_env.client)

    def h(role: str) -> dict:
        return {"Authorization": f"Bearer {tokens[role]}"}

    async with build_worker(dev_env.client, task_queue=tq), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://test") as api:
        async def get(path: str, **params):
            r = await api.get(path, headers=h("supervisor"), params=params)
            return r.json() if r.status_code == 200 else None

        async def step(path: str, role: str, body: dict | None = None) -> dict:
            r = await api.post(path, headers=h(role), json=body or {})
            assert r.status_code == 200, r.text
            return r.json()

        try:
            r = await api.post("/api/incidents", headers=h("duty_cadre"), json={
                "source": "119", "category": "accident", "subtype": "建筑施工", "town_id": "330110001",
                "place": "青溪路88号工地", "summary": "脚手架坍塌", "casualties": {"injured": 2},
                "reporting_unit": "区消防救援大队", "reporter": "王队长"})
            assert r.status_code == 201, r.text
            iid = r.json()["incident_id"]
            base = f"/api/incidents/{iid}"

            # nobody reports in time: the duty cadre is reminded, the duty chief is called at expiry
            await poll(lambda: get("/api/audit", subject=iid, kind="report.verbal"),
                       lambda ev: ev and {"report.verbal.reminder", "report.verbal.overdue"} <= {e["kind"] for e in ev},
                       what="reminder and expiry")
            await poll(lambda: get("/api/outbox", subject=iid),
                       lambda m: m and any(x["person_id"] == people["duty_chief"] for x in m), what="duty chief called")
            view = await step(f"{base}/verbal", "duty_cadre", {"to_whom": "区政府总值班室", "by_whom": "值班干部戊"})
            late_s = next(d for d in view["deadlines"] if d["key"] == "verbal")["late_by_s"]
            assert late_s > 0

            await step(f"{base}/draft", "duty_cadre", {**DRAFT, "cause": "疑似违规搭设"})
            await step(f"{base}/review", "leading_leader", {"decision": "return", "comments": "原因未查实,删去"})
            await step(f"{base}/draft", "duty_cadre", DRAFT)
            await step(f"{base}/review", "leading_leader", {"decision": "approve"})
            await step(f"{base}/submit", "duty_cadre")

            sent = await poll(lambda: get("/api/outbox", subject=iid),
                              lambda m: m and {"rcpt:committee_office", "rcpt:government_office"} <= {
                                  x["person_id"] for x in m if x["provider_id"]},  # sent, not only claimed (sending)
                              what="report sent to both offices")
            msg = next(x for x in sent if x["person_id"] == "rcpt:committee_office" and x["channel"] == "sms")
            r = await api.post(f"/api/simulator/messages/{msg['id']}", json={"outcome": "reply", "body": "1"},
                               headers=h("duty_cadre"))
            assert r.status_code == 200 and r.json()["handled"] == "ack", r.text
            detail = await poll(lambda: get(base), lambda d: d and {x["recipient_id"]: x["status"] for x in
                                                                    d["reports"][0]["receipts"]}.get("government_office")
                                == "unconfirmed", what="the unconfirmed receipt runs its course")
            receipts = {x["recipient_id"]: x for x in detail["reports"][0]["receipts"]}
            assert receipts["committee_office"]["status"] == "confirmed"
            assert receipts["committee_office"]["confirmed_via"] == "sms"

            await step(f"{base}/final", "duty_cadre", {**DRAFT, "what_happened": "处置完毕"})
            await step(f"{base}/review", "leading_leader", {"decision": "approve"})
            view = await step(f"{base}/submit", "duty_cadre")
            assert view["status"] == "closed"
            await poll(lambda: get("/api/audit", subject=iid, kind="incident.closed"), bool, what="chain closed")

            detail = await get(base)
            audit = await get("/api/audit", subject=iid)
            marks = {e["payload"]["deadline"]: e["payload"]["late_by_s"] for e in audit if e["kind"].endswith(".late")}
            assert marks == detail["compliance"]["late_by_s"] and marks["verbal"] == late_s
            assert [d["state"] for d in detail["deadlines"]][:1] == ["late"]
            kinds = {e["kind"] for e in audit}
            assert {"report.escalation.sent", "report.escalation.canceled", "report.receipt.ack",
                    "report.receipt.informed", "report.final.submitted"} <= kinds
            assert (await get("/api/audit/verify", subject=iid))["ok"]
        finally:
            await terminate_incidents(dev_env.client)
