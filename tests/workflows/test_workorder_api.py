"""Work orders through the real API (time-skipping test server, the real worker and database): intake and a
duplicate ticket, bad input (unknown category, town, unit: 422 with the reason), the caller's number masked but
for the duty office, steps by a person who is not of THE assigned unit (403), the signed hotline webhook (unsigned,
badly signed, stale or replayed: 403; a signed ticket and satisfaction taken), and a 110 notice turned into an
incident whose trail points back at the order."""
from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from api.app import create_app
from api.services.workorders import sign_body
from config import get_settings
from definitions.loader import load_or_raise
from definitions.schema.calendar import add_working_days
from store.auth import create_token
from store.db import session_scope
from store.webhooks import WebhookNonce
from tests.factories import response_district
from tests.workflows import reporting_helpers as rep
from tests.workflows.callout_helpers import wait_for
from tests.workflows.reporting_helpers import events
from tests.workflows.workorder_helpers import terminate_workorders
from worker import build_worker

SECRET = "hotline-test-secret"


@pytest.fixture
async def api(env, db_url, monkeypatch):
    monkeypatch.setenv("YINGJI_RUN_SCHEDULER", "false")
    monkeypatch.setenv("YINGJI_HOTLINE_SECRET", SECRET)
    get_settings.cache_clear()
    settings = get_settings()
    settings.task_queue = f"woapi-{uuid.uuid4().hex[:6]}"
    with session_scope() as s:
        people = response_district(s)
        tokens = {"duty": create_token(s, "duty_cadre", person_id=people["duty_cadre"], label="duty"),
                  "supervisor": create_token(s, "supervisor", label="sup"),
                  "D06": create_token(s, "duty_staff", person_id=people["D06.head"], label="d06"),
                  "D01": create_token(s, "duty_staff", person_id=people["D01.head"], label="d01")}
    app = create_app(temporal_client=env.client)
    async with build_worker(env.client, task_queue=settings.task_queue), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://test",
            headers={"Authorization": f"Bearer {tokens['duty']}"}) as client:
        client.people, client.tokens, client.app = people, tokens, app  # type: ignore[attr-defined]
        yield client
        await terminate_workorders(env.client)
        await rep.terminate_incidents(env.client)


def as_(api, who: str) -> dict:
    return {"Authorization": f"Bearer {api.tokens[who]}"}


def order(**kw) -> dict:
    return {"ticket": f"T{uuid.uuid4().hex[:8]}", "source": "12345", "category": "燃气泄漏", "urgency": "normal",
            "place": "河西街12号", "town_id": "330110001", "words": "楼道里有很重的煤气味", "caller_phone": "13900001234", **kw}


def signed(body: bytes, ts: int | None = None, secret: str = SECRET) -> dict:
    ts_s = str(int(time.time()) if ts is None else ts)
    return {"X-Hotline-Timestamp": ts_s, "X-Hotline-Signature": sign_body(secret, ts_s, body),
            "Content-Type": "application/json"}


async def test_intake_duplicate_bad_input_masking_and_the_assigned_units_steps(api):
    body = order()
    r = await api.post("/api/workorders", json=body)
    assert r.status_code == 201, r.text
    wo = r.json()
    wid = wo["id"]
    assert wid == f"workorder-12345-{body['ticket']}" and wo["duplicate"] is False
    assert wo["info"]["proposed_unit"] == "D06" and wo["info"]["caller_phone"] == "+8613900001234"
    again = await api.post("/api/workorders", json={**body, "words": "another text"})  # the same ticket: the existing one
    assert again.status_code == 200 and again.json()["id"] == wid and again.json()["duplicate"] is True
    assert again.json()["info"]["words"] == "楼道里有很重的煤气味"

    r = await api.post("/api/workorders", json=order(category="外星人"))
    assert r.status_code == 422 and "category" in r.json()["detail"] and "积水内涝" in r.json()["detail"]
    r = await api.post("/api/workorders", json=order(town_id="999"))
    assert r.status_code == 422 and "town_id" in r.json()["detail"]
    r = await api.post("/api/workorders", json=order(source="999"))
    assert r.status_code == 422

    # masked in every view but the duty office's
    sup = await api.get(f"/api/workorders/{wid}", headers=as_(api, "supervisor"))
    assert sup.status_code == 200 and sup.json()["caller_phone"] == "+86139****1234"
    assert (await api.get(f"/api/workorders/{wid}")).json()["caller_phone"] == "+8613900001234"
    listed = (await api.get("/api/workorders", headers=as_(api, "supervisor"))).json()
    assert [w["id"] for w in listed] == [wid] and "****" in listed[0]["caller_phone"]

    # an unknown unit: 422 with the reason; the unit's head may not assign
    r = await api.post(f"/api/workorders/{wid}/assign", json={"unit_id": "D99"})
    assert r.status_code == 422 and "D99" in r.json()["detail"] and "not in the directory" in r.json()["detail"]
    r = await api.post(f"/api/workorders/{wid}/assign", json={"unit_id": "330110001001"})
    assert r.status_code == 422 and "village" in r.json()["detail"]
    assert (await api.post("/api/workorders/workorder-12345-nope/assign", json={"unit_id": "D06"})).status_code == 404
    r = await api.post(f"/api/workorders/{wid}/assign", json={"unit_id": "D06"})
    assert r.status_code == 200, r.text
    assert r.json()["assignments"][0]["unit_id"] == "D06"

    # only THE assigned unit's persons sign: D01's head may not (403), D06's head may; twice is 409
    r = await api.post(f"/api/workorders/{wid}/sign", headers=as_(api, "D01"))
    assert r.status_code == 403 and "区住房和城乡建设局" in r.json()["detail"]
    r = await api.post(f"/api/workorders/{wid}/sign", headers=as_(api, "D06"))
    assert r.status_code == 200 and r.json()["status"] == "signed"
    assert r.json()["info"]["caller_phone"] == "+86139****1234"  # the unit's head: a duty role's token, masked all the same
    d06 = (await api.get(f"/api/workorders/{wid}", headers=as_(api, "D06"))).json()
    assert d06["caller_phone"] == "+86139****1234" and d06["assignments"][0]["answerers"]
    r = await api.post(f"/api/workorders/{wid}/sign", headers=as_(api, "D06"))
    assert r.status_code == 409 and "签收" in r.json()["detail"]
    r = await api.post(f"/api/workorders/{wid}/close", json={"decision": "close"})
    assert r.status_code == 409
    r = await api.post(f"/api/workorders/{wid}/feedback", json={"text": ""}, headers=as_(api, "D06"))
    assert r.status_code == 422
    detail = (await api.get(f"/api/workorders/{wid}")).json()
    assert detail["status"] == "signed" and detail["assignments"][0]["deadlines"][0]["state"] == "on_time"


async def test_signed_webhook_refuses_unsigned_stale_and_replayed_requests_and_takes_a_signed_ticket(api):
    body = json.dumps({"type": "ticket", **order(source="12345", category="积水内涝")}, ensure_ascii=False).encode()
    r = await api.post("/api/webhooks/hotline", content=body, headers={"Content-Type": "application/json"})
    assert r.status_code == 403 and "unsigned" in r.json()["detail"]
    r = await api.post("/api/webhooks/hotline", content=body, headers=signed(body, secret="wrong"))
    assert r.status_code == 403 and "signature" in r.json()["detail"]
    r = await api.post("/api/webhooks/hotline", content=body, headers=signed(body, ts=int(time.time()) - 3600))
    assert r.status_code == 403 and "window" in r.json()["detail"]
    tampered = body.replace("积水".encode(), "火情".encode())
    headers = signed(body)
    r = await api.post("/api/webhooks/hotline", content=tampered, headers=headers)
    assert r.status_code == 403
    r = await api.post("/api/webhooks/hotline", content=body, headers=headers)
    assert r.status_code == 201, r.text
    wid = r.json()["id"]
    r = await api.post("/api/webhooks/hotline", content=body, headers=headers)  # the same request again: replayed
    assert r.status_code == 403 and "replayed" in r.json()["detail"]
    with session_scope() as s:  # a signature taken long ago (its timestamp past the window) is forgotten
        s.add(WebhookNonce(key="hotline:old", seen_at=datetime.now(UTC) - timedelta(hours=1)))
    again = await api.post("/api/webhooks/hotline", content=body, headers=signed(body, ts=int(time.time()) + 1))
    assert again.status_code == 200 and again.json() == {"id": wid, "status": "received", "duplicate": True}
    with session_scope(write=False) as s:  # the old one pruned when a request was taken; the recent ones kept
        assert s.get(WebhookNonce, "hotline:old") is None
        assert s.get(WebhookNonce, f"hotline:{headers['X-Hotline-Signature']}")
    # a satisfaction before the order was closed: refused (409) with the reason
    answer = json.dumps({"type": "satisfaction", "source": "12345", "ticket": wid.rsplit("-", 1)[1],
                         "satisfaction": "满意"}, ensure_ascii=False).encode()
    r = await api.post("/api/webhooks/hotline", content=answer, headers=signed(answer))
    assert r.status_code == 409 and "审核办结后方可回访" in r.json()["detail"]
    bad = json.dumps({"type": "ticket", "ticket": "x"}).encode()
    r = await api.post("/api/webhooks/hotline", content=bad, headers=signed(bad))
    assert r.status_code == 422


async def test_an_order_counts_its_working_days_by_the_national_calendar_it_started_with(env, api):
    r = await api.post("/api/workorders", json=order(category="积水内涝"))
    assert r.status_code == 201, r.text
    history = await env.client.get_workflow_handle(r.json()["id"]).fetch_history()
    started = json.loads(history.events[0].workflow_execution_started_event_attributes.input.payloads[0].data)
    year = datetime.now(UTC).year
    expected = load_or_raise(Path(get_settings().definitions_dir)).work_calendar([year, year + 1])
    assert started["calendar"] == json.loads(expected.model_dump_json())
    r = await api.post(f"/api/workorders/{r.json()['id']}/assign", json={"unit_id": "330110001"})
    assert r.status_code == 200, r.text
    a = r.json()["assignments"][0]
    [complete] = [d for d in a["deadlines"] if d["key"] == "complete"]
    assert datetime.fromisoformat(complete["due_at"]) == add_working_days(
        datetime.fromisoformat(a["assigned_at"]), 5, 8, expected)


async def test_a_110_notice_becomes_an_incident_and_both_trails_point_at_each_other(env, api):
    r = await api.post("/api/workorders", json=order(source="110", category="危化品", urgency="urgent"))
    assert r.status_code == 201, r.text
    wid, ticket = r.json()["id"], r.json()["info"]["ticket"]
    r = await api.post(f"/api/workorders/{wid}/incident", json={}, headers=as_(api, "supervisor"))
    assert r.status_code == 403
    r = await api.post(f"/api/workorders/{wid}/incident", json={})
    assert r.status_code == 201, r.text
    iid = r.json()["incident"]["incident_id"]
    assert iid == f"WO-110-{ticket}" and r.json()["incident_id"] == iid
    inc = (await api.get(f"/api/incidents/{iid}")).json()
    assert inc["source"] == "110" and inc["category"] == "accident" and wid in inc["summary"]
    await wait_for(lambda: events(iid, "incident.from_workorder"), what="the incident's trail names the order")
    [linked] = events(wid, "workorder.incident_linked")
    assert linked.payload["incident_id"] == iid
    assert events(iid, "incident.from_workorder")[0].payload["workorder"] == wid
    assert (await api.get(f"/api/workorders/{wid}")).json()["incident_id"] == iid
    r = await api.post(f"/api/workorders/{wid}/incident", json={})
    assert r.status_code == 409 and iid in r.json()["detail"]

    # the incident's case (its review, report and case file) holds the order it came from
    r = await api.post("/api/reviews", json={"incident_id": iid, "units": ["D01"]})
    assert r.status_code == 201, r.text
    assert wid in r.json()["subjects"] and iid in r.json()["subjects"]
    from tests.workflows.callout_helpers import idle

    review = env.client.get_workflow_handle(r.json()["workflow_id"])
    await idle(review)
    await review.terminate("test over")


async def test_console_list_and_page_take_an_order_in_assign_and_show_its_limits(api):
    from tests.helpers import console_login

    web = await console_login(api.app, api.tokens["duty"])
    desk = await web.get("/console/desk")
    assert 'href="/console/workorders"' in desk.text and "热线工单" in desk.text
    r = await web.post("/console/workorders", data={"csrf": web.csrf, "ticket": "C1", "source": "12345",
                                                    "category": "积水内涝", "urgency": "normal", "place": "河西街",
                                                    "town_id": "330110001", "words": "积水", "caller_phone": "13900005678"})
    assert r.status_code == 303, r.text
    wid = "workorder-12345-C1"
    assert r.headers["location"] == f"/console/workorders/{wid}"
    page = await web.get(f"/console/workorders/{wid}")
    assert page.status_code == 200 and "待分拨" in page.text and "+8613900005678" in page.text
    r = await web.post(f"/console/workorders/{wid}/assign", data={"csrf": web.csrf, "unit_id": "D99"})
    assert r.status_code == 422 and "D99" in r.text  # the reason on the page, the form kept
    r = await web.post(f"/console/workorders/{wid}/assign", data={"csrf": web.csrf, "unit_id": "330110001"})
    assert r.status_code == 303
    page = await web.get(f"/console/workorders/{wid}")
    assert "待签收" in page.text and 'class="countdown"' in page.text and "签收时限" in page.text
    listing = await web.get("/console/workorders")
    assert listing.status_code == 200 and f'id="wo-{wid}"' in listing.text and 'data-status="assigned"' in listing.text
    assert 'id="wo-stats"' in listing.text and 'data-unit="330110001"' in listing.text  # by unit, for the scorecards
    await web.aclose()
    sup = await console_login(api.app, api.tokens["supervisor"])
    page = await sup.get(f"/console/workorders/{wid}")
    assert "+86139****5678" in page.text and "+8613900005678" not in page.text  # masked for the supervisor
    assert (await sup.get(f"/console/replay/{wid}")).status_code == 200
    replay = await sup.get(f"/console/replay/{wid}/state")  # the slider's state, at the end of the trail
    assert replay.status_code == 200 and 'id="replay-workorder"' in replay.text and 'data-state="open"' in replay.text
    await sup.aclose()
