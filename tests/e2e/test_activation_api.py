"""Plan activation 分级响应 end to end on the Temporal dev server, through the API, with the simulator and real time.

The shipped plans with every wait shortened to seconds and the special periods moved so that
today is in the flood season: a duty chief activates the epidemic plan at Ⅳ级, the commander
confirms by SMS reply, a directive goes through acknowledgement, a returned report, overdue
escalation and a late acceptance; the response is raised to Ⅲ级; a force dispatch needs the
sector department's consent before emergency management may approve it; the city is asked for
experts; the commander terminates and the post-event review starts. Every refusal is a 4xx with
the reason, and the figures of GET /api/activations/{id} agree with the audit trail.
"""
from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from api.app import create_app
from config import get_settings
from store.auth import create_token
from store.db import session_scope
from tests.factories import response_district
from tests.helpers import poll, use_definitions
from tests.workflows.activation_helpers import terminate_activations
from tests.workflows.reporting_helpers import terminate_incidents
from worker import build_worker


@pytest.fixture
def fast_plans(tmp_path: Path, monkeypatch) -> Path:
    """The plans' waits in seconds, and today inside the flood season (not the forest-fire season)."""
    today = datetime.now(UTC) + timedelta(hours=8)
    flood = f'{{id: flood, name_zh: 汛期, start: "{(today - timedelta(days=2)):%m-%d}", end: "{(today + timedelta(days=20)):%m-%d}"}}'
    fire = (f'{{id: forest_fire, name_zh: 森林防火期, start: "{(today + timedelta(days=100)):%m-%d}", '
            f'end: "{(today + timedelta(days=160)):%m-%d}"}}')

    def edit(path: Path, text: str) -> str:
        if path.parts[0] != "plans":
            return text
        text = re.sub(r"wait_ack: \d+m", "wait_ack: 3s", text).replace("remind_before: 30m", "remind_before: 4s")
        return re.sub(r"\{id: forest_fire, [^}]*\}", fire, re.sub(r"\{id: flood, [^}]*\}", flood, text))

    return use_definitions(tmp_path, monkeypatch, edit)


async def test_activation_end_to_end(dev_env, db_url, fast_plans):
    with session_scope() as s:
        p = response_district(s)
        tokens = {"duty_chief": create_token(s, "duty_chief", person_id=p["duty_chief"], label="chief"),
                  "duty_staff": create_token(s, "duty_staff", label="staff"),
                  "supervisor": create_token(s, "supervisor", label="sup")}
        for key in ("D10.head", "D08.head", "D09.head", "D01.head", "deputy_head"):
            tokens[key] = create_token(s, "commander", person_id=p[key], label=key)
    settings = get_settings()
    tq = settings.task_queue = f"e2e-act-{uuid.uuid4().hex[:6]}"
    app = create_app(temporal_client=dev_env.client)

    def h(who: str) -> dict:
        return {"Authorization": f"Bearer {tokens[who]}"}

    async with build_worker(dev_env.client, task_queue=tq), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://test") as api:
        async def get(path: str, **params):
            r = await api.get(path, headers=h("supervisor"), params=params)
            return r.json() if r.status_code == 200 else None

        async def post(path: str, who: str, body: dict | None = None, status: int = 200, words: str = "") -> dict:
            r = await api.post(path, headers=h(who), json=body if body is not None else {})
            assert r.status_code == status, r.text
            if words:
                assert words in r.json()["detail"], r.json()["detail"]
            return r.json()

        try:
            r = await api.post("/api/incidents", headers=h("duty_chief"), json={
                "source": "department", "category": "public_health", "subtype": "聚集性疫情", "town_id": "330110001",
                "place": "第1街道青溪花园小区", "summary": "初筛阳性3例", "reporting_unit": "区卫生健康局", "reporter": "疾控值班员"})
            assert r.status_code == 201, r.text
            iid = r.json()["incident_id"]
            body = {"plan": "public_health", "level": "IV", "incident_id": iid, "reason": "初筛阳性3例"}

            # who may activate, and with what
            await post("/api/activations", "duty_staff", body, 403, "may not activate")
            await post("/api/activations", "duty_chief", {**body, "plan": "typhoon"}, 422, "no response plan 'typhoon'")
            await post("/api/activations", "duty_chief", {**body, "level": "V"}, 422, "level")
            await post("/api/activations", "duty_chief", {**body, "incident_id": "nope"}, 422, "no incident 'nope'")
            await post("/api/activations", "duty_chief", {**body, "town_id": "D01"}, 422, "not a town")
            await post("/api/activations", "D08.head", {**body, "level": "II"}, 403, "does not command")
            view = await post("/api/activations", "duty_chief", body, 201)
            aid, subj = view["activation_id"], view["subject"]
            assert aid == f"{iid}-public_health" and view["workflow_id"] == f"activation-{aid}"
            again = await post("/api/activations", "duty_chief", body, 200)
            assert again["duplicate"] and again["activation_id"] == aid
            base = f"/api/activations/{aid}"
            await post(f"{base.replace(aid, 'nope')}/level", "deputy_head", {"level": "III", "reason": "x"}, 404)

            # the commander confirms by SMS reply through the simulator
            msgs = await poll(lambda: get("/api/outbox", subject=subj, person_id=p["D10.head"], channel="sms"),
                              lambda m: m and any("您任指挥长" in x["body"] and x["provider_id"] for x in m),
                              what="commander texted")
            cmd_sms = next(x for x in msgs if "您任指挥长" in x["body"] and x["provider_id"])
            r = await api.post(f"/api/simulator/messages/{cmd_sms['id']}", json={"outcome": "reply", "body": "1"},
                               headers=h("duty_chief"))
            assert r.status_code == 200 and r.json()["handled"] == "ack", r.text
            detail = await poll(lambda: get(base), lambda d: d and d["summary"]["commanders_acknowledged"],
                                what="commander acknowledged")
            assert detail["level"] == "IV" and len(detail["tasks"]) == 4
            # the duty chief confirms for a group lead who answered by phone
            await post(f"{base}/acks/nobody", "duty_chief", {"note": "电话确认"}, 404, "nobody with id 'nobody'")
            told = await post(f"{base}/acks/{p['D07.head']}", "duty_chief", {"note": "电话确认已到岗"})
            assert told["workflows"] == 1
            await poll(lambda: get("/api/audit", subject=subj, kind="activation.convene.ack"),
                       lambda ev: ev and any(e["payload"]["person_id"] == p["D07.head"] and e["channel"] == "proxy"
                                             for e in ev), what="proxy acknowledgement")
            trajectory = next(t for t in detail["tasks"] if t["task_id"] == "trajectory")
            assert (datetime.fromisoformat(trajectory["due_at"]) - datetime.fromisoformat(detail["activated_at"])
                    == timedelta(hours=4))

            # a directive: acknowledged, reported done, returned, overdue (the superior called), done late, accepted
            await post(f"{base}/directives", "D10.head", {"text": "核查密接", "assignee": "group:data",
                                                          "due_at": "2030-01-01T10:00:00"}, 422, "time zone")
            await post(f"{base}/directives", "duty_chief", {"text": "核查密接", "assignee": "group:data", "due_in": "8s"},
                       403, "may not issue directives")
            view = await post(f"{base}/directives", "D10.head", {"title": "密接核查", "text": "完成密接人员落地核查并上报名单",
                                                                 "assignee": "group:data", "due_in": "8s"})
            assert view["directives"][0]["id"] == "D1"
            await post(f"{base}/items/D9/ack", "D08.head", {}, 404, "no task or directive 'D9'")
            await post(f"{base}/items/D1/ack", "D08.head")
            await post(f"{base}/items/D1/ack", "D08.head", {}, 409, "acknowledged already")
            await post(f"{base}/items/D1/feedback", "D08.head", {"kind": "done", "text": "已核查"})
            await post(f"{base}/items/D1/review", "D10.head", {"decision": "return", "comments": "缺名单"})
            await poll(lambda: get("/api/audit", subject=subj, kind="activation.directive.overdue"), bool, what="overdue")
            await poll(lambda: get("/api/outbox", subject=subj, person_id=p["deputy_head"]),
                       lambda m: m and any("督办" in x["body"] for x in m), what="the assignee's superior called")
            await post(f"{base}/items/D1/feedback", "D08.head", {"kind": "done", "text": "名单已补报"})
            view = await post(f"{base}/items/D1/review", "D10.head", {"decision": "accept"})
            late = view["directives"][0]["late_by_s"]
            assert late > 0

            # up to Ⅲ级: the deputy district head commands
            await post(f"{base}/level", "duty_chief", {"level": "III", "reason": "x"}, 403, "change the response level")
            view = await post(f"{base}/level", "deputy_head", {"level": "III", "reason": "出现本土确诊病例"})
            assert view["level"] == "III" and len(view["tasks"]) == 7
            await poll(lambda: get("/api/outbox", subject=subj, person_id=p["deputy_head"]),
                       lambda m: m and any("您任指挥长" in x["body"] for x in m), what="Ⅲ级 commander called")

            # force dispatch in the flood season: the sector department (卫健局 for this plan) agrees first
            view = await post(f"{base}/dispatches", "D09.head", {"forces": ["fire_rescue", "medical"], "task": "转运密接人员"})
            assert view["dispatches"][0]["state"] == "consulting"
            await post(f"{base}/dispatches/1/decision", "D01.head", {"decision": "approve"}, 409, "会商行业主管部门")
            await post(f"{base}/dispatches/1/consult", "D10.head", {"agree": True, "opinion": "同意"})
            view = await post(f"{base}/dispatches/1/decision", "D01.head", {"decision": "approve"})
            assert view["dispatches"][0]["state"] == "approved"
            await poll(lambda: get("/api/outbox", subject=subj, person_id=p["D09.head"]),
                       lambda m: m and any("【出动指令】" in x["body"] for x in m), what="fire rescue ordered out")

            # reinforcement from the city, answered
            await post(f"{base}/reinforcements", "deputy_head", {"kind": "teams", "detail": "核酸采样队3支"})
            await post(f"{base}/reinforcements/1/answer", "duty_chief", {"decision": "partial", "detail": "先派2支",
                                                                         "by_whom": "市应急管理局"})
            # termination by the commander; the post-event review starts
            await post(f"{base}/terminate", "duty_chief", {"reason": "x"}, 403, "may not terminate")
            view = await post(f"{base}/terminate", "deputy_head", {"reason": "疫情得到控制,响应终止"})
            assert view["status"] == "terminated" and view["review_workflow_id"] == f"review-{iid}"
            desc = await dev_env.client.get_workflow_handle(f"review-{iid}").describe()
            assert desc.workflow_type == "PostEventReviewWorkflow"
            await post(f"{base}/directives", "deputy_head", {"text": "x", "assignee": "group:data", "due_in": "1h"}, 409,
                       "ended")

            detail = await poll(lambda: get(base), lambda d: d and d["status"] == "terminated", what="read model")
            assert detail["summary"]["late"] == {"D1": late} and detail["summary"]["open"] == 0
            listed = await get("/api/activations", incident_id=iid)
            assert [x["id"] for x in listed] == [aid] and listed[0]["status"] == "terminated"
            audit = await get("/api/audit", subject=subj)
            kinds = {e["kind"] for e in audit}
            assert {"activation.started", "activation.convene.ack", "activation.directive.returned",
                    "activation.directive.overdue", "activation.directive.late", "activation.level.changed",
                    "activation.dispatch.consulted", "activation.dispatch.approved", "activation.reinforcement.answered",
                    "activation.terminated", "activation.review.started"} <= kinds
            assert "activation.refused" not in kinds  # counted apart (store/refusals.py)
            assert {r["kind"] for r in await get("/api/audit/refusals", subject=subj)} == {"activation.refused"}
            [mark] = [e for e in audit if e["kind"] == "activation.directive.late"]
            assert mark["payload"]["late_by_s"] == late
            assert (await get("/api/audit/verify", subject=subj))["ok"]
        finally:
            await terminate_activations(dev_env.client)
            await terminate_incidents(dev_env.client)
