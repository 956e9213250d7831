"""End to end on the Temporal dev server, through the API, with the simulator gateway and real time: a 12345
work order comes in by the hotline platform's signed webhook, is assigned to the town the definitions propose,
signed by its head through the signed link of the SMS, fed back on and completed by the town, closed by the duty
office; the result reaches the (fake) hotline platform once and its satisfaction answer, signed, ends the order.
A 110 notice becomes an incident whose reporting chain starts; its verbal report reaches the city platform (a local
fake over real HTTP) through the signed city line, and the city's signed receipt comes back."""
from __future__ import annotations

import json
import time
import uuid

import httpx
import pytest

from api.app import create_app
from api.services.workorders import sign_body
from config import get_settings
from store.auth import create_token
from store.db import session_scope
from tests.factories import small_district
from tests.fakes.city_platform import FakeCityPlatform
from tests.fakes.hotline_platform import FakeHotline
from tests.helpers import as_delivered, poll
from tests.workflows.reporting_helpers import events, outbox, terminate_incidents
from tests.workflows.workorder_helpers import terminate_workorders
from worker import build_worker

SECRET = "e2e-hotline-secret"


def signed(payload: dict) -> tuple[bytes, dict]:
    body = json.dumps(payload, ensure_ascii=False).encode()
    ts = str(int(time.time()))
    return body, {"X-Hotline-Timestamp": ts, "X-Hotline-Signature": sign_body(SECRET, ts, body),
                  "Content-Type": "application/json"}


@pytest.mark.budget(60)  # real time: every step is taken at once; the platform answers on loopback (estimated)
async def test_a_12345_order_by_the_signed_webhook_to_its_answer_back_and_a_110_notice_to_an_incident(
        dev_env, db_url, monkeypatch):
    with FakeHotline() as platform, FakeCityPlatform() as city:
        monkeypatch.setenv("YINGJI_HOTLINE_SECRET", SECRET)
        monkeypatch.setenv("YINGJI_HOTLINE_PLATFORM_URL", platform.base_url)
        for key, value in {"GATEWAY": "http", "URL": city.base_url, "SECRET": city.secret}.items():
            monkeypatch.setenv(f"YINGJI_CITYLINE_{key}", value)
        get_settings.cache_clear()
        with session_scope() as s:
            people = small_district(s)
            tokens = {"duty": create_token(s, "duty_cadre", person_id=people["duty_cadre"], label="duty"),
                      "town": create_token(s, "duty_staff", person_id=people["330110001.head"], label="town")}
        settings = get_settings()
        tq = settings.task_queue = f"e2e-wo-{uuid.uuid4().hex[:6]}"
        app = create_app(temporal_client=dev_env.client)

        def h(who: str) -> dict:
            return {"Authorization": f"Bearer {tokens[who]}"}

        async with build_worker(dev_env.client, task_queue=tq), httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://test") as api:
            try:
                body, headers = signed({"type": "ticket", "ticket": "E2E-1", "source": "12345", "category": "积水内涝",
                                        "place": "河西街与青溪路口", "town_id": "330110001", "words": "路口积水没过膝盖",
                                        "caller_phone": "13900007777"})
                r = await api.post("/api/webhooks/hotline", content=body, headers=headers)
                assert r.status_code == 201, r.text
                wid = r.json()["id"]
                assert (await api.post("/api/webhooks/hotline", content=body, headers=headers)).status_code == 403

                order = (await api.get(f"/api/workorders/{wid}", headers=h("duty"))).json()
                assert order["proposed_unit"] == "330110001" and order["caller_phone"] == "+8613900007777"
                r = await api.post(f"/api/workorders/{wid}/assign", headers=h("duty"), json={"unit_id": "330110001"})
                assert r.status_code == 200, r.text

                # the town head signs through the link in the SMS
                head = people["330110001.head"]
                sms = await poll(lambda: _async(lambda: [m for m in outbox(wid, head) if m.channel == "sms"
                                                         and m.provider_id]), bool, what="the signing SMS")
                link = httpx.URL(as_delivered(sms[0].id).ack_url).path
                assert (await api.post(link)).status_code == 200
                await poll(lambda: _get(api, f"/api/workorders/{wid}", h("duty")), lambda w: w["status"] == "signed",
                           what="signed by the link")

                r = await api.post(f"/api/workorders/{wid}/feedback", headers=h("town"), json={"text": "已派泵车"})
                assert r.status_code == 200, r.text
                r = await api.post(f"/api/workorders/{wid}/complete", headers=h("town"), json={"result": "积水已排除"})
                assert r.status_code == 200 and r.json()["info"]["caller_phone"] == "+86139****7777"
                r = await api.post(f"/api/workorders/{wid}/close", headers=h("duty"), json={"decision": "close"})
                assert r.status_code == 200, r.text

                # 回访: the result reaches the platform once; its satisfaction answer ends the order
                await poll(lambda: _get(api, f"/api/workorders/{wid}", h("duty")),
                           lambda w: w["visits"] and w["visits"][-1]["posted_at"], what="the result posted")
                assert list(platform.results) == ["12345-E2E-1-v1"]
                assert platform.results["12345-E2E-1-v1"]["result"] == "积水已排除"
                body, headers = signed({"type": "satisfaction", "source": "12345", "ticket": "E2E-1",
                                        "satisfaction": "满意"})
                r = await api.post("/api/webhooks/hotline", content=body, headers=headers)
                assert r.status_code == 200 and r.json()["status"] == "visited", r.text
                done = await poll(lambda: _get(api, f"/api/workorders/{wid}", h("duty")), lambda w: w["ended_at"],
                                  what="the order ended")
                a = done["assignments"][0]
                assert [d["state"] for d in a["deadlines"]] == ["on_time", "on_time", "on_time"] and a["closed"]

                # a 110 notice becomes an incident
                r = await api.post("/api/workorders", headers=h("duty"), json={
                    "ticket": "E2E-2", "source": "110", "category": "危化品", "urgency": "urgent", "place": "化工园区",
                    "town_id": "330110002", "words": "槽罐车侧翻,有液体泄漏"})
                assert r.status_code == 201, r.text
                r = await api.post(f"/api/workorders/{r.json()['id']}/incident", headers=h("duty"), json={})
                assert r.status_code == 201, r.text
                iid = r.json()["incident"]["incident_id"]
                inc = await poll(lambda: _get(api, f"/api/incidents/{iid}", h("duty")), bool, what="the incident")
                assert inc["source"] == "110" and {d["key"] for d in inc["deadlines"]} >= {"verbal", "written"}

                # its verbal report reaches the city platform over the signed city line, and the city signs for it
                r = await api.post(f"/api/incidents/{iid}/verbal", headers=h("duty"),
                                   json={"to_whom": "区政府总值班室", "by_whom": "值班干部"})
                assert r.status_code == 200, r.text
                posts = await poll(lambda: _async(lambda: city.posts_of(f"{iid}/verbal", "city_duty")), bool,
                                   what="the verbal report at the city platform")
                assert len(posts) == 1 and "【口头报告】" in posts[0].body["text"]
                # the office may sign before our side has recorded it sent (the platform took the post and has not
                # answered yet): the receipt is kept and recorded right after report.city.sent
                receipt = await city.push_receipt(api, "/api/webhooks/cityline", f"{iid}/verbal", 1, "city_duty")
                assert receipt.status_code == 200, receipt.text
                inc = await poll(lambda: _get(api, f"/api/incidents/{iid}", h("duty")),
                                 lambda i: i and any(u["signed_by"] for u in i["upward"]), what="the receipt recorded")
                up = {(u["report_id"], u["to"]): u for u in inc["upward"]}
                assert up[(f"{iid}/verbal", "city_duty")]["via"] == "cityline"
                assert up[(f"{iid}/verbal", "city_duty")]["signed_by"] == "市局值班员"
                assert [e.kind for e in events(iid, "report.city.")] == ["report.city.sent", "report.city.receipt"]
            finally:
                await terminate_workorders(dev_env.client)
                await terminate_incidents(dev_env.client)
        get_settings.cache_clear()


async def _async(fn):
    return fn()


async def _get(api, path: str, headers: dict):
    r = await api.get(path, headers=headers)
    return r.json() if r.status_code == 200 else None
