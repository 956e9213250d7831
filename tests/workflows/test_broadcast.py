"""应急广播 from the call-out: an orange heavy-rain warning plays on the broadcast terminals of exactly its towns,
once (also when the activity is retried after the platform accepted), the receipt lands in the trail; a cancel
plays the 解除; a yellow warning plays nothing. On the time-skipping server, with the real activities, a real
database and a local fake platform over real HTTP."""
from __future__ import annotations

import re

import httpx
import pytest
from sqlmodel import select

from activities.gateways import reset_gateways
from config import get_settings
from definitions.schema.common import Level
from store.auth import create_token
from store.broadcasts import Broadcast, BroadcastArea
from store.db import session_scope
from store.directory import OrgUnit
from tests.fakes.broadcast_platform import FakeBroadcastPlatform
from tests.workflows import callout_helpers
from tests.workflows.callout_helpers import callout_input, events, idle, start, wait_for
from workflows.callout import WarningCalloutWorkflow

people, worker = callout_helpers.people, callout_helpers.worker  # the shared fixtures
TOWNS = ["330110001", "330110002"]  # of the small district's three towns


@pytest.fixture
def platform(monkeypatch, db_url):
    with FakeBroadcastPlatform() as fake:
        for name, value in {"BROADCAST_GATEWAY": "http", "BROADCAST_URL": fake.base_url,
                            "BROADCAST_SECRET": fake.secret, "RUN_SCHEDULER": "false"}.items():
            monkeypatch.setenv(f"YINGJI_{name}", value)
        get_settings.cache_clear()
        reset_gateways()
        yield fake
    get_settings.cache_clear()
    reset_gateways()


@pytest.fixture
def simulator(monkeypatch, db_url):
    monkeypatch.setenv("YINGJI_BROADCAST_GATEWAY", "simulator")
    get_settings.cache_clear()
    reset_gateways()
    yield
    get_settings.cache_clear()
    reset_gateways()


def rows(callout_id: str) -> list[Broadcast]:
    with session_scope(write=False) as s:
        return list(s.exec(select(Broadcast).where(Broadcast.subject == callout_id).order_by(Broadcast.requested_at)))


def areas(request_id: str) -> dict[str, BroadcastArea]:
    with session_scope(write=False) as s:
        return {a.town_id: a for a in s.exec(select(BroadcastArea).where(BroadcastArea.request_id == request_id))}


def kinds(callout_id: str) -> list[str]:
    return [e.kind for e in events(callout_id) if e.kind.startswith("broadcast.")]


async def test_orange_plays_in_its_towns_once_though_retried_and_the_receipt_lands(env, worker, people, platform):
    with session_scope() as s:  # the platform knows town 2's terminals by an area code of its own
        town2 = s.get(OrgUnit, "330110002")
        town2.area_code = "QX-GB-0002"
        s.add(town2)
    # the platform accepts the POST and its answer is lost, then the gateway's question right after fails too:
    # the attempt fails with the task created, and the retry must find it rather than post again
    platform.fail_next(2)
    inp = callout_input(level=Level.orange, towns=TOWNS)
    handle = await start(env.client, worker, inp)

    accepted = await wait_for(lambda: [e for e in events(inp.callout_id, "broadcast.accepted")], what="accepted")
    assert platform.failed_after_accept.is_set()
    [row] = rows(inp.callout_id)
    assert row.status == "accepted" and row.level == "orange" and row.purpose == "alert" and row.repeat == 3
    posts = platform.posts_of(row.request_id)
    assert len(posts) == 1, "the broadcast was posted twice"
    body = posts[0].body
    assert sorted(body["areas"]) == ["330110001", "QX-GB-0002"]  # exactly the warning's towns, by their area codes
    assert body["request_id"] == row.request_id and body["repeat"] == 3 and body["level"] == "orange"
    assert body["drill"] is False and "暴雨橙色预警" in body["text"] and "【演练】" not in body["text"]
    assert row.task_id == platform.tasks[row.request_id]["task_id"]
    assert accepted[0].payload["found_by_asking"] is True  # the retry asked the platform and found its task
    assert [a.request_id for a in platform.asks].count(row.request_id) >= 2  # the failed question, the retry's
    assert kinds(inp.callout_id) == ["broadcast.requested", "broadcast.accepted"]
    requested = events(inp.callout_id, "broadcast.requested")[0].payload
    assert requested["towns"] == TOWNS and requested["areas"] == ["330110001", "QX-GB-0002"]

    # the platform's receipt: town 1 played, town 2's terminal failed
    from api.app import create_app

    app = create_app(temporal_client=env.client)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://yingji.test") as http:
        got = await platform.push_receipt(http, "/api/webhooks/broadcast", row.request_id,
                                          {"330110001": "played", "QX-GB-0002": "failed"})
        assert got.status_code == 200, got.text
        again = await platform.push_receipt(http, "/api/webhooks/broadcast", row.request_id,  # resent, newly signed
                                            {"330110001": "played"})
        assert again.status_code == 200
        played = events(inp.callout_id, "broadcast.played")
        failed = events(inp.callout_id, "broadcast.failed")
        assert [(e.payload["town_id"], e.payload["terminal"]) for e in played] == [("330110001", "330110001-T1")]
        assert [(e.payload["town_id"], e.payload["error"]) for e in failed] == [("330110002", "终端离线")]
        by_town = areas(row.request_id)
        assert {t: a.status for t, a in by_town.items()} == {"330110001": "played", "330110002": "failed"}

        # the board shows each town's state, as the duty chief sees it
        with session_scope() as s:
            token = create_token(s, "duty_chief", person_id=people["duty_chief"], label="chief")
        csrf = re.search(r'name="csrf" value="([^"]+)"', (await http.get("/console/login")).text).group(1)
        assert (await http.post("/console/login/token", data={"token": token, "csrf": csrf})).status_code == 303
        page = await http.get(f"/console/callouts/{inp.callout_id}")
        assert page.status_code == 200, page.text
    card = page.text.split('id="broadcast"')[1].split("</section>")[0]
    assert "应急广播" in page.text and "平台已受理" in card and "播放 3 遍" in card
    shown = dict(re.findall(r'data-broadcast-town="(\d+)" data-broadcast-state="(\w+)"', card))
    assert shown == {"330110001": "played", "330110002": "failed"}
    assert "第1街道" in card and "QX-GB-0002" in card
    await handle.terminate("test over")


async def test_cancel_plays_the_end_where_the_warning_was_played(env, worker, people, simulator):
    inp = callout_input(level=Level.orange, towns=TOWNS)
    handle = await start(env.client, worker, inp)
    await wait_for(lambda: len(events(inp.callout_id, "broadcast.played")) == 2, what="the simulator's receipts")
    [alert] = rows(inp.callout_id)
    assert {t: a.status for t, a in areas(alert.request_id).items()} == {t: "played" for t in TOWNS}
    await handle.signal(WarningCalloutWorkflow.cancel, "预警解除")
    await handle.result()
    alert_, end = rows(inp.callout_id)
    assert end.purpose == "cancel" and "解除" in end.text and end.status == "accepted"
    assert set(areas(end.request_id)) == set(TOWNS)
    assert len(events(inp.callout_id, "broadcast.played")) == 4


async def test_yellow_plays_nothing(env, worker, people, platform):
    inp = callout_input(level=Level.yellow, towns=TOWNS)
    handle = await start(env.client, worker, inp)
    await handle.result()
    await idle(handle)
    assert rows(inp.callout_id) == [] and kinds(inp.callout_id) == []
    assert platform.posts == [] and platform.asks == []


async def test_drill_is_marked(env, worker, people, simulator):
    inp = callout_input(level=Level.red, towns=["330110003"])
    inp = inp.model_copy(update={"drill": True})
    handle = await start(env.client, worker, inp)
    await wait_for(lambda: events(inp.callout_id, "broadcast.played"), what="played")
    [row] = rows(inp.callout_id)
    assert row.drill and row.text.startswith("【演练】") and "红色预警" in row.text
    await handle.terminate("test over")


async def test_refused_is_recorded_the_callout_goes_on_and_no_end_is_played(env, worker, people, platform, monkeypatch):
    monkeypatch.setenv("YINGJI_BROADCAST_SECRET", "not-the-platforms-secret")  # the platform refuses us: 401
    get_settings.cache_clear()
    reset_gateways()
    inp = callout_input(level=Level.orange, towns=TOWNS)
    handle = await start(env.client, worker, inp)
    await wait_for(lambda: events(inp.callout_id, "broadcast.failed"), what="the refusal recorded")
    [row] = rows(inp.callout_id)
    assert row.status == "failed" and "401" in (row.error or "") and row.task_id is None
    assert {a.status for a in areas(row.request_id).values()} == {"failed"}
    assert platform.posts == [] and platform.refused == ["bad signature"]  # refused once, never retried
    await handle.signal(WarningCalloutWorkflow.cancel, "预警解除")
    result = await handle.result()
    assert result.status == "canceled"
    assert [r.purpose for r in rows(inp.callout_id)] == ["alert"]  # no 解除 where nothing was played


async def test_update_raised_to_red_plays_everywhere_again_and_a_grown_area_only_the_new_town(env, worker, people,
                                                                                              simulator):
    inp = callout_input(level=Level.orange, towns=["330110001"])
    handle = await start(env.client, worker, inp)
    await wait_for(lambda: len(events(inp.callout_id, "broadcast.played")) == 1, what="orange played")
    grown = inp.warning.model_copy(update={"identifier": inp.warning.identifier + "-u1", "town_ids": TOWNS})
    await handle.signal(WarningCalloutWorkflow.update, grown)  # same level, one more town
    await wait_for(lambda: len(events(inp.callout_id, "broadcast.played")) == 2, what="the new town played")
    red = grown.model_copy(update={"identifier": inp.warning.identifier + "-u2", "level": Level.red})
    await handle.signal(WarningCalloutWorkflow.update, red)
    await wait_for(lambda: len(events(inp.callout_id, "broadcast.played")) == 4, what="red played")
    played = [(r.purpose, r.level, sorted(areas(r.request_id))) for r in rows(inp.callout_id)]
    assert played == [("alert", "orange", ["330110001"]), ("update", "orange", ["330110002"]),
                      ("update", "red", TOWNS)]
    assert "暴雨红色预警" in rows(inp.callout_id)[-1].text
    await handle.terminate("test over")
