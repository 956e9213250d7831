"""`GET /api/scorecards` and `GET /api/scorecards/{unit_id}` over audit events written to the database: a real
call-out (an answer, a late answer, a silence), a drill that must not count, an incident with a late report; and
the 422/404 answers for a bad period or an unknown unit."""
from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from config import get_settings
from store.audit import NewEvent, append
from store.callouts import Callout, CalloutTarget
from store.auth import create_token
from store.db import session_scope
from store.workorders import WorkOrder, WorkOrderAssignment

T0 = datetime(2026, 11, 10, 2, 0, tzinfo=UTC)  # 10:00 in the duty office's day
TOWN, VILLAGE, TOWN2, DEPT = "330110001", "330110001001", "330110002", "D01"


def _ev(subject: str, wid: str, kind: str, minutes: float, step: str, **payload) -> NewEvent:
    return NewEvent(subject=subject, kind=kind, step_id=step, workflow_id=wid, at=T0 + timedelta(minutes=minutes),
                    payload=payload)


def _callout(s, cid: str, subject: str, drill: bool, targets: dict[str, str]) -> list[NewEvent]:
    s.add(Callout(id=cid, plan_id="heavy_rain", plan_version="x", level="orange", category="heavy_rain", drill=drill,
                  started_at=T0))
    s.flush()
    for key, unit in targets.items():
        s.add(CalloutTarget(callout_id=cid, target_key=key, tier=key.split("/")[0], position_code="x",
                            org_unit_id=unit, person_id=f"p-{cid}-{key}"))
    evs = [_ev(subject, cid, "callout.started", 0, "started", level="orange", drill=drill)]
    for key in targets:
        evs.append(_ev(subject, f"{cid}/shard-0", "callout.sent", 0.1, f"send/{key}/0.0/p/sms", target=key,
                       person_id=f"p-{key}", purpose="notify", status="sent"))
    return evs


@pytest.fixture
def data(db_url, monkeypatch):
    from tests.factories import small_district

    monkeypatch.setenv("YINGJI_ADMIN_TOKEN", "duty-admin")
    monkeypatch.setenv("YINGJI_RUN_SCHEDULER", "false")
    get_settings.cache_clear()
    with session_scope() as s:
        small_district(s)
        real = _callout(s, "callout-W1", "callout-W1", False, {"towns/1": TOWN, "villages/2": VILLAGE, "departments/3": DEPT})
        real += [
            _ev("callout-W1", "callout-W1/shard-0", "callout.ack", 3.1, "towns/1/ack", target="towns/1", state="acknowledged"),
            _ev("callout-W1", "callout-W1/shard-0", "callout.escalated", 10, "villages/2/esc", target="villages/2",
                state="escalated"),
            _ev("callout-W1", "callout-W1/shard-0", "callout.unreachable", 30, "villages/2/u", target="villages/2",
                state="unreachable"),
            _ev("callout-W1", "callout-W1/shard-0", "callout.unreachable", 30, "departments/3/u", target="departments/3",
                state="unreachable"),
            _ev("callout-W1", "callout-W1/shard-0", "callout.ack.late", 45, "departments/3/late", target="departments/3"),
        ]
        drill = _callout(s, "callout-Wdrill", "callout-Wdrill", True, {"towns/9": TOWN})
        drill.append(_ev("callout-Wdrill", "callout-Wdrill/shard-0", "callout.ack", 1, "towns/9/ack", target="towns/9",
                         state="acknowledged"))
        incident = [
            _ev("INC-9", "incident-INC-9", "incident.received", 0, "received", title="内涝", town_id=TOWN2, reporting_unit_id="D04",
                deadlines={"verbal": (T0 + timedelta(minutes=30)).isoformat()}),
            _ev("INC-9", "incident-INC-9", "report.verbal.made", 40, "verbal"),
            _ev("INC-9", "incident-INC-9", "report.verbal.late", 40, "deadline/verbal/late", deadline="verbal",
                label="口头报告", late_by_s=600, due_at=(T0 + timedelta(minutes=30)).isoformat()),
        ]
        append(s, real + drill + incident)
        s.add(WorkOrder(id="workorder-12345-1", source="12345", ticket="1", category="drainage", received_at=T0))
        s.flush()
        s.add(WorkOrderAssignment(work_order_id="workorder-12345-1", seq=1, unit_id="D02", assigned_at=T0,
                                  signed_at=T0 + timedelta(hours=2), sign_late_s=3600))
        supervisor = create_token(s, "supervisor", label="supervisor")
    return {"Authorization": "Bearer duty-admin"}, supervisor


async def test_scorecards_api(data):
    from api.app import create_app

    data, supervisor = data

    app = create_app(temporal_client=object())  # the scorecards never reach Temporal
    period = {"from": "2026-11-10", "to": "2026-11-10"}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as web:
        r = await web.get("/api/scorecards", params=period, headers=data)
        assert r.status_code == 200, r.text
        units = {u["unit_id"]: u for u in r.json()["units"]}
        assert {u["kind"] for u in units.values()} == {"town", "department"}
        town = units[TOWN]["callouts"]
        # the village's silence counts for its town; the drill's answer does not count at all
        assert (town["called"]["value"], town["answered"]["value"], town["never"]["value"],
                town["escalated"]["value"]) == (2, 1, 1, 1)
        assert town["time_to_answer"]["median_s"] == 180.0
        assert "refs" not in town["called"]  # a listing counts; one unit's card names the events
        dept = units[DEPT]["callouts"]
        assert dept["called"]["value"] == 1 and dept["answered_late"]["value"] == 1 and dept["answered"]["value"] == 0
        rep = units[TOWN2]["reporting"]
        assert rep["late"]["value"] == 1 and rep["late"]["refs"][0]["late_by_s"] == 600
        assert rep["late"]["refs"][0]["link"] == "/console/replay/INC-9"
        assert units["D04"]["reporting"]["late"]["value"] == 1  # the reporting unit owes it as well as the town
        assert units[TOWN]["reporting"] is None
        assert units["D02"]["callouts"] is None
        wo = units["D02"]["workorders"]  # store.workorders.unit_statistics, with the order to replay
        assert (wo["assigned"], wo["signed_late"], wo["signed_on_time"]) == (1, 1, 0)
        assert wo["refs"][0]["subject"] == "workorder-12345-1" and units[TOWN]["workorders"] is None

        towns = (await web.get("/api/scorecards", params={**period, "kind": "town"}, headers=data)).json()["units"]
        assert towns and {u["kind"] for u in towns} == {"town"}
        # the period is the local day: the day before holds nothing
        before = (await web.get("/api/scorecards", params={"from": "2026-11-09", "to": "2026-11-09"},
                                headers=data)).json()["units"]
        assert all(u["callouts"] is None and u["reporting"] is None for u in before)

        one = await web.get(f"/api/scorecards/{TOWN}", params=period, headers=data)
        assert one.status_code == 200, one.text
        body = one.json()
        assert body["unit"]["unit_id"] == TOWN and body["unit"]["callouts"]["called"]["value"] == 2
        assert [ref["subject"] for ref in body["unit"]["callouts"]["called"]["refs"]] == ["callout-W1"] * 2
        assert {e["subject"] for e in body["events"]} == {"callout-W1"}
        assert all(e["link"] == "/console/replay/callout-W1" for e in body["events"])
        assert any("callouts.never" in e["figures"] for e in body["events"])

        for params in ({"from": "2026-13-01", "to": "2026-11-10"}, {"from": "2026-11-10"},
                       {"from": "2026-11-10", "to": "2026-11-01"}, {**period, "kind": "village"}):
            bad = await web.get("/api/scorecards", params=params, headers=data)
            assert bad.status_code == 422, (params, bad.text)
            assert bad.json()["detail"]
        bad = await web.get(f"/api/scorecards/{TOWN}", params={"from": "x", "to": "2026-11-10"}, headers=data)
        assert bad.status_code == 422
        missing = await web.get("/api/scorecards/NOPE", params=period, headers=data)
        assert missing.status_code == 404 and "NOPE" in missing.json()["detail"]
        village = await web.get(f"/api/scorecards/{VILLAGE}", params=period, headers=data)
        assert village.status_code == 404

        # the console page, as a supervisor: the table, each figure a link to the unit's records, each to its replay
        csrf = re.search(r'name="csrf" value="([^"]+)"', (await web.get("/console/login")).text).group(1)
        assert (await web.post("/console/login/token", data={"token": supervisor, "csrf": csrf})).status_code == 303
        page = await web.get("/console/scorecards", params={"date_from": "2026-11-10", "date_to": "2026-11-10"})
        assert page.status_code == 200 and "考核统计" in page.text
        row = page.text.split(f'data-unit="{TOWN}"')[1].split("</tr>")[0]
        assert f'/console/scorecards/{TOWN}?date_from=2026-11-10&date_to=2026-11-10#callouts-never' in row
        unit = await web.get(f"/console/scorecards/{TOWN}", params={"date_from": "2026-11-10", "date_to": "2026-11-10"})
        assert unit.status_code == 200 and 'id="callouts-never"' in unit.text
        assert 'href="/console/replay/callout-W1"' in unit.text
        assert (await web.get("/console/scorecards/NOPE")).status_code == 404
        default = await web.get("/console/scorecards")  # no dates: the last 30 days
        assert default.status_code == 200 and 'name="date_from" value="20' in default.text
        bad = await web.get("/console/scorecards", params={"date_from": "2026-11-10", "date_to": "2026-11-01"})
        assert bad.status_code == 422 and "结束日期早于开始日期" in bad.text
