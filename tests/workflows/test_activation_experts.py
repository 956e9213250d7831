"""会商研判 on the time-skipping test server with the real activities, database and API: the duty chief convenes the
register's experts of the fields needed for an activation (`POST /api/activations/{id}/consultations`); they are
called as the activation calls everyone (an SMS with the answer link, then voice); who confirmed is recorded; the
meeting's conclusions (`…/consultations/{n}/conclusions`) are recorded against the activation, shown on its console
page and in the review's event report; refusals name what is wrong; the history replays."""
from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from temporalio.worker import Worker

from config import get_settings
from definitions.schema.reporting import Severity
from store.audit import verify
from store.auth import create_token
from store.db import session_scope
from store.resources import Expert
from tests.factories import response_district
from tests.helpers import replayer
from tests.workflows.activation_helpers import (activation_input, ack, events, outbox, plan, start, subject,
                                                terminate_activations, with_seasons)
from tests.workflows.callout_helpers import wait_for
from worker import build_worker
from workflows.activation import PlanActivationWorkflow as W


@pytest.fixture
def people(db_url):
    with session_scope() as s:
        people = response_district(s)
        s.add_all([
            Expert(id="X-FL-1", name="(登记名)", field="flood", title="高级工程师", person_id=people["330110001001.resp"]),
            Expert(id="X-GE-1", name="冯雅琴", field="geology", title="教授", mobile="+8613900009901"),
            Expert(id="X-GE-2", name="无电话专家", field="geology"),  # no number: cannot be called
            Expert(id="X-ME-1", name="钱立群", field="medical", mobile="+8613900009902"),  # another field
        ])
        return people


@pytest.fixture
async def tq(env, db_url, people):
    queue = f"exp-{uuid.uuid4().hex[:8]}"
    w: Worker = build_worker(env.client, task_queue=queue)
    async with w:
        yield queue
        await terminate_activations(env.client)


@pytest.fixture
async def api(env, tq, people, monkeypatch):
    monkeypatch.setenv("YINGJI_TASK_QUEUE", tq)
    monkeypatch.setenv("YINGJI_RUN_SCHEDULER", "false")
    get_settings.cache_clear()
    with session_scope() as s:
        tokens = {"duty_chief": create_token(s, "duty_chief", person_id=people["duty_chief"], label="值班长"),
                  "supervisor": create_token(s, "supervisor", label="督查")}
    from api.app import create_app

    app = create_app(temporal_client=env.client)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t", timeout=60) as client:
        client.as_role = lambda role: {"Authorization": f"Bearer {tokens[role]}"}
        yield client
    get_settings.cache_clear()


async def test_experts_convened_confirmed_and_conclusions_recorded(env, tq, api, people):
    inp = activation_input("flood_control", level=Severity.IV, town="330110001",
                           the_plan=with_seasons(plan("flood_control"), in_flood=False))
    subj, aid = subject(inp), inp.info.activation_id
    h = await start(env.client, tq, inp)
    chief = api.as_role("duty_chief")
    at = (datetime.now(UTC) + timedelta(hours=2)).replace(microsecond=0)
    body = {"fields": ["flood", "geology"], "at": at.isoformat(), "place": "区应急指挥中心三楼会商室",
            "topic": "研判山洪地质灾害风险"}

    # refusals: a role that may not, a field not in the list, no time zone, a field without experts, no activation
    r = await api.post(f"/api/activations/{aid}/consultations", json=body, headers=api.as_role("supervisor"))
    assert r.status_code == 403
    r = await api.post(f"/api/activations/{aid}/consultations", json={**body, "fields": ["astrology"]}, headers=chief)
    assert r.status_code == 422 and "astrology" in r.json()["detail"]
    r = await api.post(f"/api/activations/{aid}/consultations", json={**body, "at": "2026-07-01T15:00:00"}, headers=chief)
    assert r.status_code == 422 and "time zone" in r.text
    r = await api.post(f"/api/activations/{aid}/consultations", json={**body, "fields": ["hazmat"]}, headers=chief)
    assert r.status_code == 422 and "hazmat" in r.json()["detail"]
    r = await api.post("/api/activations/nope/consultations", json=body, headers=chief)
    assert r.status_code == 404

    r = await api.post(f"/api/activations/{aid}/consultations", json=body, headers=chief)
    assert r.status_code == 200, r.text
    [m] = r.json()["meetings"]
    assert m["seq"] == 1 and [e["id"] for e in m["experts"]] == ["X-FL-1", "X-GE-1"]  # fields' order; one has no number
    flood_person = people["330110001001.resp"]
    assert m["experts"][0]["person_id"] == flood_person and m["experts"][1]["person_id"] == "expert:X-GE-1"
    [convened] = events(subj, "activation.meeting.convened")
    assert convened.actor == people["duty_chief"] and convened.payload["place"] == "区应急指挥中心三楼会商室"

    # each expert called as the activation calls: an SMS with the answer link first
    sms = await wait_for(lambda: [x for x in outbox(subj, "expert:X-GE-1") if x.channel == "sms" and x.provider_id],
                         what="the geology expert's SMS")
    assert "【会商研判】" in sms[0].body and "区应急指挥中心三楼会商室" in sms[0].body and "地质灾害" in sms[0].body
    assert sms[0].to == "+8613900009901" and sms[0].ack_url
    assert not outbox(subj, "expert:X-ME-1")
    await wait_for(lambda: outbox(subj, flood_person), what="the flood expert called")
    assert (await ack(env.client, inp, "expert:X-GE-1", "sms")).told == 1
    view = await wait_for(lambda: (v := _view(aid)) and v["meetings"][0]["experts"][1]["confirmed_at"] and v,
                          what="the geology expert's confirmation recorded")
    assert view["meetings"][0]["experts"][0]["confirmed_at"] is None
    await wait_for(lambda: any(e.payload.get("person_id") == "expert:X-GE-1" for e in events(subj, "activation.experts.ack")),
                   what="the confirmation in the trail")

    # conclusions: refusals first, then recorded against the activation
    r = await api.post(f"/api/activations/{aid}/consultations/9/conclusions", json={"text": "x"}, headers=chief)
    assert r.status_code == 404 and "9" in r.json()["detail"]
    r = await api.post(f"/api/activations/{aid}/consultations/1/conclusions",
                       json={"text": "x", "present": ["X-ME-1"]}, headers=chief)
    assert r.status_code == 422 and "X-ME-1" in r.json()["detail"]
    text = "上游水库已超汛限水位,建议转移沿河两岸低洼处群众,加密地质灾害隐患点巡查。"
    r = await api.post(f"/api/activations/{aid}/consultations/1/conclusions", json={"text": text, "present": ["X-GE-1"]},
                       headers=chief)
    assert r.status_code == 200, r.text
    assert r.json()["meetings"][0]["conclusions"][0]["text"] == text
    [concluded] = events(subj, "activation.meeting.concluded")
    assert concluded.payload["text"] == text and concluded.payload["confirmed"] == ["X-GE-1"]
    assert concluded.actor == people["duty_chief"]

    # the review's event report and the console page show it
    with session_scope(write=False) as s:
        assert verify(s, subj).ok
        from store.replay import load_events
        from store.review.activation_stats import activation_stats
        [held] = activation_stats(subj, load_events(s, subj))["meetings"]
    assert held["confirmed"] == ["冯雅琴"] and held["conclusions"][0]["text"] == text
    assert held["invited"][1] == "冯雅琴" and held["place"] == "区应急指挥中心三楼会商室"
    from store.report import render
    from store.review.stats import statistics

    with session_scope(write=False) as s:
        st = statistics({subj: load_events(s, subj)})
    _, html, _ = render({"incident_id": inp.info.incident_id, "title": "x", "version": 1, "final": False,
                         "compiled_at": "2026-12-05", "incident": {"title": "x"}, "timeline": [], "units": [],
                         "signoff": None, "returns": [], "lessons": {"shortcomings": [], "suggestions": []}, "names": {},
                         "statistics": st}, pdf=False)
    assert "会商研判(第1次)" in html and "确认参加1人(冯雅琴)" in html and text in html
    await _console_shows(api, aid, text)
    await replayer(W).replay_workflow(await h.fetch_history())


def _view(aid: str) -> dict | None:
    from store.activations import Activation

    with session_scope(write=False) as s:
        row = s.get(Activation, aid)
        return row.view if row else None


async def _console_shows(api, aid: str, text: str) -> None:
    from api.console import auth
    from store.auth import lookup_token

    with session_scope() as s:
        token = create_token(s, "duty_staff", label="值班员")
    with session_scope(write=False) as s:
        cookie = auth.session_cookie(get_settings(), {"m": "token", "t": lookup_token(s, token).id})
    r = await api.get(f"/console/activations/{aid}", headers={"cookie": f"{auth.COOKIE}={cookie}"})
    assert r.status_code == 200, r.text
    assert "会商研判" in r.text and text in r.text and "已确认参加" in r.text and "冯雅琴" in r.text and "防汛抗旱" in r.text
