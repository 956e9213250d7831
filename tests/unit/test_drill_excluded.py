"""A drill is never a real call-out: no statistic, no desk figure, no list of real call-outs counts it;
and the console's duty-day pages (handovers, drill results) render from the read models."""
from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from activities.duty import drill_figures
from api.services import desk as services
from api.console.pages import library
from config import get_settings
from store.auth import create_token
from store.callouts import Callout, CalloutTarget
from store.db import session_scope
from store.duty import DrillRun, Handover, callout_statistics
from store.links import make_ack_token

NOW = datetime.now(UTC)


def _callout(s, cid: str, drill: bool, status: str, acked: int, total: int) -> None:
    s.add(Callout(id=cid, plan_id="heavy_rain" if not drill else "drill_x", plan_version="x", level="orange",
                  category="heavy_rain" if not drill else "drill", drill=drill, status=status,
                  title=("[演练]区级部门应急值守连通性演练" if drill else f"暴雨橙色预警叫应 {cid}"),
                  started_at=NOW - timedelta(hours=1), ended_at=None if status == "running" else NOW))
    s.flush()
    for n in range(total):
        first = NOW - timedelta(minutes=50)
        s.add(CalloutTarget(callout_id=cid, target_key=f"t/{n}", tier="departments", position_code="dept_head",
                            org_unit_id="D01", person_id=f"p-{cid}-{n}", name=f"{cid}-{n}",
                            state="acknowledged" if n < acked else "unreachable",
                            acknowledged_at=first + timedelta(minutes=2) if n < acked else None,
                            attempts=[{"purpose": "notify", "at": first.isoformat(), "channel": "sms", "status": "sent"}]))


@pytest.fixture
def data(db_url, monkeypatch):
    from tests.factories import small_district

    monkeypatch.setenv("YINGJI_ADMIN_TOKEN", "duty-admin")
    monkeypatch.setenv("YINGJI_RUN_SCHEDULER", "false")
    get_settings.cache_clear()
    with session_scope() as s:
        people = small_district(s)
        _callout(s, "C-real-running", False, "running", 1, 2)
        _callout(s, "C-real-ended", False, "completed", 3, 4)
        _callout(s, "D-1/callout", True, "completed", 3, 3)
        _callout(s, "D-2/callout", True, "running", 0, 5)
        s.add(DrillRun(id="D-1", drill_id="district_connectivity", name="区级部门应急值守连通性演练", counts_as="district",
                       callout_id="D-1/callout", status="reported", window_s=1800, total=3, responded=3, acknowledged=3,
                       rate=1.0, sample={"names": ["区应急管理局"]}))
        s.add(Handover(id="handover-T1", shift_at=NOW - timedelta(minutes=5), outgoing_id=people["duty_chief"],
                       outgoing_name="值班长丁", incoming_id="p-chief2", incoming_name="值班长庚", status="handed_over",
                       due_at=NOW + timedelta(minutes=25),
                       note={"items": [{"kind": "warning", "ref": "W1", "text": "橙色暴雨预警:青溪区暴雨橙色预警"}],
                             "text": "夜间无重大情况"}))
        tokens = {"chief": create_token(s, "duty_chief", person_id=people["duty_chief"], label="chief")}
    return people, tokens


def test_statistics_leave_drills_out(data):
    with session_scope(write=False) as s:
        st = callout_statistics(s)
    assert st["callouts"] == 2 and st["targets"] == 6 and st["acknowledged"] == 4
    assert st["rate"] == pytest.approx(4 / 6, abs=1e-4) and st["median_ack_s"] == 120
    assert st["drills_left_out"] == 2


def test_the_desk_counts_real_call_outs_only_and_lists_drills_apart(data):
    with session_scope(write=False) as s:
        desk = services.desk(s, library(), NOW)
    assert [v["c"].id for v in desk["running"]] == ["C-real-running"]
    assert [v["c"].id for v in desk["ended"]] == ["C-real-ended"]
    assert {v["c"].id for v in desk["drills"]} == {"D-1/callout", "D-2/callout"}


async def test_api_and_console(data, monkeypatch):
    from api.app import create_app
    from api.services import duty as svc

    async def no_schedules(*_a, **_k):
        return []

    monkeypatch.setattr(svc, "list_schedules", no_schedules)
    _, tokens = data
    app = create_app(temporal_client=object())  # the pages below never reach Temporal
    admin = {"Authorization": "Bearer duty-admin"}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as web:
        stats = (await web.get("/api/statistics/callouts", headers=admin)).json()
        assert stats["callouts"]["callouts"] == 2 and stats["callouts"]["drills_left_out"] == 2
        assert stats["drills"]["runs"] == 1 and stats["drills"]["drills"][0]["rate"] == 1.0
        real = (await web.get("/api/callouts", params={"drill": "false"}, headers=admin)).json()
        assert {c["id"] for c in real} == {"C-real-running", "C-real-ended"}
        drills = (await web.get("/api/callouts", params={"drill": "true"}, headers=admin)).json()
        assert {c["id"] for c in drills} == {"D-1/callout", "D-2/callout"}
        # the acknowledgement page of a drill says so
        token = make_ack_token(get_settings().signing_key(), "D-2/callout", "p-D-2/callout-0")
        page = (await web.get(f"/ack/{token}")).text  # its title was stored with the old marker: read as a drill
        assert "【演练】【叫应】区级部门应急值守连通性演练" in page and "[演练]" not in page

        # the console, as the outgoing duty chief
        csrf = re.search(r'name="csrf" value="([^"]+)"', (await web.get("/console/login")).text).group(1)
        r = await web.post("/console/login/token", data={"token": tokens["chief"], "csrf": csrf})
        assert r.status_code == 303
        desk = (await web.get("/console/desk")).text
        running = desk.split('id="running"')[1].split("</table>")[0]
        assert "C-real-running" in running and "演练" not in running
        assert "desk-drills" in desk and "D-2/callout" in desk.split('id="desk-drills"')[1]
        assert '/console/handovers' in desk and '/console/drills' in desk  # in the navigation
        page = (await web.get("/console/handovers")).text
        assert "值班长庚" in page and "handover-T1" in page
        page = (await web.get("/console/handovers/handover-T1")).text
        assert "橙色暴雨预警" in page and "夜间无重大情况" in page
        assert 'action="/console/handovers/handover-T1/note"' in page, "the outgoing chief may edit the note"
        assert 'id="take-over"' not in page, "only the incoming chief (or the leader) takes over"
        page = (await web.get("/console/drills")).text
        assert "D-1" in page and "100%" in page and 'id="real-stats"' in page
        real_box = page.split('id="real-stats"')[1].split("</div>")[0]
        assert "<strong>2</strong>" in real_box
        page = (await web.get("/console/drills/D-1")).text
        assert "【演练】" in page and "100%" in page and page.count(">时限内</span>") == 3
        assert (await web.get("/console/drills/nope")).status_code == 404


def test_drill_figures_count_answers_within_the_window():
    start = NOW
    targets = []
    for n, after in enumerate([60, 1700, 1900, None]):
        targets.append(CalloutTarget(callout_id="c", target_key=f"t{n}", tier="x", position_code="p", org_unit_id="u",
                                     person_id=f"p{n}", name=f"n{n}",
                                     attempts=[{"purpose": "notify", "at": start.isoformat()}],
                                     acknowledged_at=start + timedelta(seconds=after) if after else None))
    fig = drill_figures(targets, start, timedelta(minutes=30))
    assert fig["total"] == 4 and fig["responded"] == 2 and fig["acknowledged"] == 3 and fig["rate"] == 0.5
    assert [x["person_id"] for x in fig["late"]] == ["p2"] and [x["person_id"] for x in fig["never"]] == ["p3"]


def test_cli_lists_and_controls_through_the_api(data, monkeypatch):
    from fastapi.testclient import TestClient
    from typer.testing import CliRunner

    import cli.callout
    from api.app import create_app
    from api.services import duty as svc
    from cli.main import app as cli_app

    calls = []

    async def schedules(*_a, **_k):
        return [{"id": "drill-district_connectivity", "kind": "drill", "name_zh": "区级部门应急值守连通性演练",
                 "name_en": "x", "when_zh": "每周二、五 09:30", "version": "v1", "installed": True, "paused": False,
                 "up_to_date": True, "next_runs": [NOW.isoformat()], "runs": 4}]

    async def control(_client, _lib, _settings, schedule_id, action, note, actor, reason=""):
        calls.append((schedule_id, action, note, actor, reason))
        return {"id": schedule_id, "paused": action == "pause", "note": note, "next_runs": []}

    monkeypatch.setattr(svc, "list_schedules", schedules)
    monkeypatch.setattr(svc, "control_schedule", control)
    app = create_app(temporal_client=object())
    monkeypatch.setattr(cli.callout, "_client", lambda: TestClient(app, headers={"Authorization": "Bearer duty-admin"}))
    runner = CliRunner()
    out = runner.invoke(cli_app, ["duty", "schedules"])
    assert out.exit_code == 0, out.output
    assert "drill-district_connectivity" in out.output and "active" in out.output and "每周二、五 09:30" in out.output
    out = runner.invoke(cli_app, ["duty", "schedules", "pause", "drill-district_connectivity", "--note", "防汛应急响应期间暂停",
                                  "--reason", "防汛Ⅱ级响应"])
    assert out.exit_code == 0 and "now paused" in out.output, out.output
    assert calls == [("drill-district_connectivity", "pause", "防汛应急响应期间暂停", "admin:admin-token", "防汛Ⅱ级响应")]
    out = runner.invoke(cli_app, ["duty", "drills"])
    assert out.exit_code == 0 and "【演练】区级部门应急值守连通性演练" in out.output and "100%" in out.output, out.output
    out = runner.invoke(cli_app, ["duty", "handovers"])
    assert out.exit_code == 0 and "值班长庚" in out.output and "handed_over" in out.output, out.output
    out = runner.invoke(cli_app, ["duty", "contacts", "--which", "stale"])
    assert out.exit_code == 0 and "值班长丁" in out.output, out.output  # nobody confirmed yet: everyone is stale
