"""The register kept up to date: the yearly contact confirmation round 通讯录核实 confirms, with a person's contact
data, the register's records they answer for (a team's leader, a depot's keeper, an expert of the directory, a
shelter's manager); the confirmation page lists them; records not confirmed within a year, or with no owner, are
the stale list (`GET /api/resources/stale`, the console's 待核实)."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest

from config import get_settings
from store.auth import create_token
from store.db import session_scope
from store.duty import make_confirm_token
from store.resources import Expert, RescueTeam, Shelter, SupplyDepot
from tests.factories import small_district


@pytest.fixture
async def web(db_url, monkeypatch):
    monkeypatch.setenv("YINGJI_ADMIN_TOKEN", "duty-admin")
    monkeypatch.setenv("YINGJI_RUN_SCHEDULER", "false")
    get_settings.cache_clear()
    long_ago = datetime.now(UTC) - timedelta(days=500)
    with session_scope() as s:
        people = small_district(s, towns=1, villages=1)
        owner, other = people["330110001.head"], people["D01.head"]
        s.add_all([RescueTeam(id="T-A", name="水利防汛抢险队", kind="flood", strength=40, leader_id=owner),
                   RescueTeam(id="T-B", name="民兵应急分队", kind="militia", strength=30, leader_id=other,
                              confirmed_at=long_ago),
                   RescueTeam(id="T-C", name="无人负责队伍", kind="social", strength=5),
                   SupplyDepot(id="DEP-1", name="第1街道物资仓库", keeper_id=owner),
                   Shelter(id="S-1", name="青溪中学体育馆", place="学府路5号", capacity=800, manager_id=other,
                           confirmed_at=datetime.now(UTC) - timedelta(days=30)),
                   Expert(id="X-1", name="冯雅琴", field="geology", mobile="+8613900009901")])
        token = create_token(s, "duty_staff", label="值班员")
    from api.app import create_app

    app = create_app(temporal_client=object())
    app.state.temporal = _no_temporal
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        client.h = {"Authorization": f"Bearer {token}"}
        client.people = people
        yield client


async def _no_temporal():
    return None  # Temporal away: the link's confirmation is recorded directly (as after the round closed)


async def test_the_owner_confirms_their_records_with_their_contact_data(web):
    r = await web.get("/api/resources/stale", headers=web.h)
    assert r.status_code == 200
    before = {x["id"]: x["reason"] for x in r.json()["records"]}
    assert before == {"T-A": "never", "T-B": "stale", "T-C": "no_owner", "DEP-1": "never", "X-1": "no_owner"}
    assert r.json()["counts"] == {"never": 2, "stale": 1, "no_owner": 2}

    owner = web.people["330110001.head"]
    token = make_confirm_token(get_settings().signing_key(), "freshness-test", owner)
    page = await web.get(f"/confirm/{token}")
    assert page.status_code == 200
    assert "水利防汛抢险队" in page.text and "第1街道物资仓库" in page.text and "民兵应急分队" not in page.text
    done = await web.post(f"/confirm/{token}")
    assert done.status_code == 200 and "已确认" in done.text
    with session_scope(write=False) as s:
        assert s.get(RescueTeam, "T-A").confirmed_at is not None and s.get(SupplyDepot, "DEP-1").confirmed_at
        assert s.get(RescueTeam, "T-B").confirmed_at < datetime.now(UTC) - timedelta(days=400)  # not theirs
    after = {x["id"]: x["reason"] for x in (await web.get("/api/resources/stale", headers=web.h)).json()["records"]}
    assert after == {"T-B": "stale", "T-C": "no_owner", "X-1": "no_owner"}


async def test_the_console_lists_the_stale_records_in_chinese(web):
    from api.console import auth
    from store.auth import lookup_token

    with session_scope() as s:
        token = create_token(s, "duty_staff", label="值班员2")
    with session_scope(write=False) as s:
        cookie = auth.session_cookie(get_settings(), {"m": "token", "t": lookup_token(s, token).id})
    r = await web.get("/console/resources/stale", headers={"cookie": f"{auth.COOKIE}={cookie}"})
    assert r.status_code == 200, r.text
    assert "待核实" in r.text and "从未核实" in r.text and "超过一年未核实" in r.text and "无负责人" in r.text
    assert 'data-record="S-1"' not in r.text  # confirmed a month ago
    assert web.people["D01.head"] not in r.text  # the owner by name
