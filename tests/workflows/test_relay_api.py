"""到户到人 through the API: a village person's SMS reply "已到户 35户", the signed link's households form, a grid
worker's SMS from a number nobody sent to, the duty office recording on a person's behalf (and its refusals),
and the figures in GET /api/callouts/{id} and on the board. Time-skipping test server, the real API, worker and
activities."""
from __future__ import annotations

import re
import uuid

import httpx
import pytest
from sqlmodel import select

from api.app import create_app
from api.services.answers import sms_reply
from config import get_settings
from store.auth import create_token
from store.db import session_scope
from store.directory import Person, Position, Post
from tests.factories import small_district
from tests.helpers import console_login
from tests.workflows.callout_helpers import callout_input, events, outbox, start, terminate_callouts, wait_for
from worker import build_worker

GRID_MOBILE = "+8613900009999"


@pytest.fixture
async def api(env, db_url, monkeypatch):
    monkeypatch.setenv("YINGJI_RUN_SCHEDULER", "false")
    get_settings.cache_clear()
    settings = get_settings()
    settings.task_queue = f"relay-{uuid.uuid4().hex[:6]}"
    with session_scope() as s:
        people = small_district(s)
        s.add(Position(code="grid_worker", name_zh="网格员", name_en="Grid worker"))
        s.add(Person(id="p-grid", name="网格员戊", mobile=GRID_MOBILE, org_unit_id="330110002001"))
        s.flush()
        s.add(Post(position_code="grid_worker", org_unit_id="330110002001", person_id="p-grid"))
        token = create_token(s, "duty_staff", label="duty")
    app = create_app(temporal_client=env.client)
    async with build_worker(env.client, task_queue=settings.task_queue), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://test",
            headers={"Authorization": f"Bearer {token}"}) as client:
        client.people, client.tq, client.app, client.token = people, settings.task_queue, app, token  # type: ignore[attr-defined]
        yield client
        await terminate_callouts(env.client)


def relay_row(cid: str, person: str):
    from store.callouts import CalloutRelay

    with session_scope(write=False) as s:
        return s.exec(select(CalloutRelay).where(CalloutRelay.callout_id == cid, CalloutRelay.person_id == person)).first()


def sms(cid: str, person: str, relay: bool) -> list:
    return [m for m in outbox(cid, person_id=person)
            if m.provider_id and m.channel == "sms" and bool((m.meta or {}).get("relay")) == relay]


async def reply(api, msg, body: str) -> dict:
    r = await api.post(f"/api/simulator/messages/{msg.id}", json={"outcome": "reply", "body": body})
    assert r.status_code == 200, r.text
    return r.json()


async def test_relay_answers_through_the_api(env, api):
    p = api.people
    inp = callout_input(towns=["330110001", "330110002"])
    cid = inp.callout_id
    handle = await start(env.client, api.tq, inp)
    v1, v2, v3, v4 = (p[f"{v}.resp"] for v in ("330110001001", "330110001002", "330110002001", "330110002002"))
    for person in (v1, v2, v3, v4):  # each acknowledges the call-out by SMS: its relay is asked
        [first] = await wait_for(lambda: sms(cid, person, relay=False), what="the call-out SMS")
        assert (await reply(api, first, "收到"))["recorded"] == "taken"
    for person in (v1, v2, v3, v4):
        await wait_for(lambda: sms(cid, person, relay=True), what="the relay request")

    # 1. the village person's SMS reply, as people write it
    out = await reply(api, sms(cid, v1, relay=True)[0], "已到户 35户")
    assert out["handled"] == "ack" and out["households"] == 35 and out["recorded"] == "taken"
    assert out["message"] == "已记录:到户35户"

    # 2. the signed link in the relay SMS: a form asking the number of households
    link = httpx.URL(sms(cid, v2, relay=True)[0].ack_url).path
    await wait_for(lambda: relay_row(cid, v2), what="the relay asked of v2 on record")  # (written just after the SMS)
    page = await api.get(link)
    assert page.status_code == 200 and 'name="households"' in page.text and "危险区群众" in page.text
    bad = await api.post(link, data={"households": "许多"})
    assert bad.status_code == 422 and "户数无效" in bad.text  # the link stays usable
    done = await api.post(link, data={"households": "20"})
    assert done.status_code == 200 and "到户20户" in done.text and 'data-recorded="taken"' in done.text

    # 3. a grid worker's SMS from a number nobody sent to: for their village's person
    out = await sms_reply(env.client, "simulator", GRID_MOBILE, "到户42", provider_id="grid-1")
    assert out["handled"] == "ack" and out["person_id"] == v3 and out["households"] == 42

    # 4. the duty office, on the person's behalf; refusals name what is wrong
    url = f"/api/callouts/{cid}/relays/{v4}"
    r = await api.post(url, json={"households": -1})
    assert r.status_code == 422
    r = await api.post(url, json={"households": 7, "reported_by": "p-grid"})  # not the grid worker of v4's village
    assert r.status_code == 422 and "grid worker" in r.text
    r = await api.post(f"/api/callouts/{cid}/relays/{p['D01.head']}", json={"households": 7})
    assert r.status_code == 404 and "no relay" in r.text
    r = await api.post(url, json={"households": 7, "note": "电话报告"})
    assert r.status_code == 200 and r.json()["households"] == 7

    confirmed = await wait_for(lambda: len(events(cid, "relay.confirmed")) == 4 and events(cid, "relay.confirmed"),
                               what="four confirmations")  # (one per village)
    by = {e.payload["for"]: e.payload for e in confirmed}
    assert {pid: by[pid]["households"] for pid in (v1, v2, v3, v4)} == {v1: 35, v2: 20, v3: 42, v4: 7}
    assert by[v3]["by"] == "p-grid" and by[v3]["on_behalf"] and not by[v1]["on_behalf"]
    assert by[v4]["on_behalf"] and by[v4]["by"] != v4

    # the board's 代录到户 form: the duty office corrects v1's figure on their behalf (recorded, not a mere repeat)
    web = await console_login(api.app, api.token)
    try:
        r = await web.post(f"/console/callouts/{cid}/relays/{v1}", data={"households": "36", "csrf": web.csrf})
        assert r.status_code == 303, r.text
        r = await web.post(f"/console/callouts/{cid}/relays/{v1}", data={"households": "36"})
        assert r.status_code == 403  # no CSRF token, nothing recorded
    finally:
        await web.aclose()
    again = await wait_for(lambda: [e for e in events(cid, "relay.confirmed") if e.payload.get("again")],
                           what="the correction")
    assert again[0].payload["households"] == 36 and again[0].payload["on_behalf"]

    # the figures: GET /api/callouts/{id} and the board
    c = (await api.get(f"/api/callouts/{cid}")).json()
    assert c["relay"]["counts"]["confirmed"] == 4 and c["relay"]["counts"]["households"] == 105
    villages = {v["village"]: v for v in c["relay"]["villages"]}
    assert villages["330110002001"]["relayed"] and villages["330110002001"]["households"] == 42
    assert villages["330110001001"]["acknowledged"] and not villages["330110001001"]["overdue"]
    web = await console_login(api.app, api.token)
    try:
        board = await web.get(f"/console/callouts/{cid}")
    finally:
        await web.aclose()
    assert board.status_code == 200 and 'id="relays"' in board.text
    assert board.text.count('data-relayed="1"') == 4 and 'data-households="42"' in board.text
    assert re.search(r"已到户 4/4 村 · 共 105 户", board.text)
    result = await handle.result()
    assert result.summary["relay"]["confirmed"] == 4


async def test_a_held_relay_reply_keeps_its_figure_when_assigned(env, api):
    from store.links import reply_code

    p = api.people
    a, b = p["330110001001.resp"], p["330110001002.resp"]
    with session_scope() as s:  # the two village persons share one phone
        s.get(Person, b).mobile = s.get(Person, a).mobile
    inp = callout_input()
    cid = inp.callout_id
    await start(env.client, api.tq, inp)
    for person in (a, b):  # each acknowledges with their code: both relays are asked
        [first] = await wait_for(lambda: sms(cid, person, relay=False), what="the call-out SMS")
        assert (await reply(api, first, f"1 {reply_code(cid, person)}"))["person_id"] == person
    for person in (a, b):
        await wait_for(lambda: sms(cid, person, relay=True), what="the relay request")
    out = await reply(api, sms(cid, a, relay=True)[0], "到户 35")  # whose? held for the duty office
    assert out["handled"] == "ambiguous"
    [held] = (await api.get("/api/answers/ambiguous")).json()
    r = await api.post(f"/api/answers/{held['id']}/assign", json={"person_id": a})
    assert r.status_code == 200, r.text
    [ok] = await wait_for(lambda: events(cid, "relay.confirmed"), what="a's relay confirmed")
    assert ok.payload["households"] == 35 and ok.payload["for"] == a
