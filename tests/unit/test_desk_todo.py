"""待我处理 per role and the live desk's alarms, read from the store (api/services/todo.py, desk_alarms.py)."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlmodel import select

from api.services.activations import proposals, start_conditions
from api.services.desk_alarms import alarms, changes
from api.services.todo import todo
from store.callouts import CalloutTarget
from store.db import session_scope
from tests import desk_seed as seed
from tests.factories import small_district


def _kinds(items):
    return sorted({(i["kind"], i["title"]) for i in items})


def test_each_role_sees_its_own_work(db_url):
    with session_scope() as s:
        people = small_district(s)
        waiting = seed.incident(s, "青溪路脚手架坍塌", timedelta(minutes=30))
        seed.draft(s, waiting)
        seed.unreachable(s, people["330110001.head"], "街道1主任")
        seed.response(s, waiting, commander=people["330110001.head"], other=people["330110002.head"])
    now = datetime.now(UTC)
    with session_scope(write=False) as s:
        leader = todo(s, "leading_leader", people["leading_leader"], now)
        cadre = todo(s, "duty_cadre", people["duty_cadre"], now)
        commander = todo(s, "commander", people["330110001.head"], now)
        other = todo(s, "commander", people["330110002.head"], now)
        supervisor = todo(s, "supervisor", None, now)
        admin = todo(s, "admin", None, now)

    assert _kinds(leader) == [("approve_report", "青溪路脚手架坍塌")]
    assert leader[0]["detail"] == "书面报告 v1" and leader[0]["href"] == f"/console/incidents/{waiting}#h-reports"
    assert _kinds(cadre) == [("phone", "街道1主任"), ("report_due", "青溪路脚手架坍塌")]
    phone = next(i for i in cadre if i["kind"] == "phone")
    assert phone["tel"] and phone["href"].endswith("?state=unreachable")  # the number to dial, the board to settle it
    due = next(i for i in cadre if i["kind"] == "report_due")
    assert due["detail"] == "口头报告" and due["due"] > now
    assert _kinds(commander) == [("answer_seat", "青溪区生产安全事故应急预案"), ("do_item", "组织现场救援"),
                                 ("review_item", "现场核查")]
    assert other == []  # assigned nothing open, commands nothing: the reported task is the commander's to review
    assert supervisor == []
    assert {i["kind"] for i in admin} == {"approve_report", "phone", "report_due"}


def test_an_approved_draft_no_longer_waits_for_the_leader_but_for_the_duty_office(db_url):
    from store.incidents import IncidentReport, ReportVersion

    with session_scope() as s:
        small_district(s)
        iid = seed.incident(s, "已审批的报告", timedelta(minutes=30))
        seed.draft(s, iid)
        v = s.exec(select(ReportVersion).where(ReportVersion.incident_id == iid)).one()
        v.decision = "approve"
        r = s.exec(select(IncidentReport).where(IncidentReport.incident_id == iid)).one()
        r.state = "approved"
        s.add_all([v, r])
    with session_scope(write=False) as s:
        assert todo(s, "leading_leader", None, datetime.now(UTC)) == []
        staff = todo(s, "duty_staff", None, datetime.now(UTC))
    assert ("submit_report", "已审批的报告") in _kinds(staff)  # approved: the duty office submits it
    with session_scope() as s:
        r = s.exec(select(IncidentReport).where(IncidentReport.incident_id == iid)).one()
        r.state = "returned"
        s.add(r)
    with session_scope(write=False) as s:
        assert ("redraft", "已审批的报告") in _kinds(todo(s, "duty_chief", None, datetime.now(UTC)))


def test_an_unanswered_seat_of_a_response_is_an_alarm_and_a_call_to_make(db_url):
    from store.activations import Activation

    with session_scope() as s:
        people = small_district(s)
        iid = seed.incident(s, "厂房坍塌", timedelta(hours=1))
        aid = seed.response(s, iid, commander=people["330110001.head"], other=people["330110002.head"])
        a = s.get(Activation, aid)
        a.view = {**a.view, "seats": [{**a.view["seats"][0], "state": "unreachable", "name": "街道1主任"}]}
        s.add(a)
    with session_scope(write=False) as s:
        found = [x for x in alarms(s, datetime.now(UTC)) if x["kind"] == "unreachable"]
        calls = [x for x in todo(s, "duty_cadre", None, datetime.now(UTC)) if x["kind"] == "phone"]
    assert [(x["name"], x["detail"]) for x in found] == [("街道1主任", "青溪区生产安全事故应急预案 · 指挥长")]
    assert [(x["title"], x["href"]) for x in calls] == [("街道1主任", f"/console/activations/{aid}")] and calls[0]["tel"]


def test_running_a_schedule_now_says_to_how_many(db_url):
    from pathlib import Path

    from api.services.duty.schedules import reach
    from definitions.loader import load_library
    from store.directory import Person

    lib = load_library(Path(__file__).resolve().parents[2] / "definitions")
    with session_scope() as s:
        small_district(s)
    with session_scope(write=False) as s:
        n = len([p for p in s.exec(select(Person)) if p.mobile])
        said = reach(s, lib)
    assert f"全部 {n} 人" in said["freshness-round"][0] and f"all {n} persons" in said["freshness-round"][1]
    assert "上月考核通报" in said["bulletin-monthly"][0]
    assert "救援队伍" in said["readiness-monthly"][0] and "rescue team" in said["readiness-monthly"][1]
    assert all(k.startswith("drill-") for k in said
               if k not in ("freshness-round", "handover", "spotcheck-sweep", "bulletin-monthly", "readiness-monthly"))


def test_alarms_name_new_warnings_overdue_limits_and_unreachable_persons(db_url):
    from store.warnings import Warning

    with session_scope() as s:
        people = small_district(s)
        late = seed.incident(s, "迟报的事件", timedelta(minutes=-1))
        seed.incident(s, "未到期的事件", timedelta(minutes=30))
        cid = seed.unreachable(s, people["330110001.head"], "街道1主任")
        s.add(Warning(id="W-test", identifier="qx-1", headline="青溪区气象台发布暴雨橙色预警", level="orange"))
    with session_scope(write=False) as s:
        found = alarms(s, datetime.now(UTC))
        before = changes(s)
    keys = {a["key"]: a for a in found}
    assert keys["warning:W-test"]["name"] == "青溪区气象台发布暴雨橙色预警"
    assert keys[f"overdue:{late}:verbal"]["name"] == "迟报的事件 · 口头报告"
    assert keys[f"callout:{cid}"]["kind"] == "callout"
    assert [a["name"] for a in found if a["kind"] == "unreachable"] == ["街道1主任"]
    assert not [k for k in keys if "未到期" in keys[k]["name"]]  # not overdue yet: no alarm
    with session_scope() as s:
        t = s.exec(select(CalloutTarget)).first()
        t.state, t.updated_at = "acknowledged", datetime.now(UTC)
        s.add(t)
    with session_scope(write=False) as s:
        assert changes(s) != before  # an answer moves the desk: its watchers refresh
        assert not [a for a in alarms(s, datetime.now(UTC)) if a["kind"] == "unreachable"]


def test_level_proposal_and_start_conditions():
    from pathlib import Path

    from definitions.loader import load_library

    lib = load_library(Path(__file__).resolve().parents[2] / "definitions")
    plans = {pid: loaded.model for pid, loaded in lib.of("plans").items()}
    conds = start_conditions(plans)
    assert list(conds["flood_control"]) == ["I", "II", "III", "IV"]
    assert "暴雨橙色预警" in conds["flood_control"]["IV"]["condition"]
    got = proposals(plans, [{"id": "a", "category": "accident", "title": "青溪路工地坍塌", "subtype": "建筑施工", "severity": "III"},
                            {"id": "b", "category": "natural_disaster", "title": "山体滑坡", "subtype": "", "severity": "IV"},
                            {"id": "c", "category": "natural_disaster", "title": "不明情况", "subtype": "", "severity": "IV"}])
    assert got["a"] == {"work_safety": "III"}
    assert got["b"] == {"geological_hazard": "IV"}
    assert got["c"] == {}  # several plans of the category and none named: nothing proposed


async def test_one_poll_serves_every_desk_open(monkeypatch):
    """Two desks watching: one query of the alarms per tick, not one per browser (api/console/desk.py)."""
    from types import SimpleNamespace

    from api.console import desk

    calls: list[str] = []

    async def fake_db(fn, *args, **kw):
        calls.append(fn.__name__)
        return [{"key": "warning:W1", "kind": "warning", "name": "暴雨橙色预警"}] if fn is alarms else ["mark"]

    monkeypatch.setattr(desk, "db", fake_db)
    monkeypatch.setattr(desk, "POLL_S", 0.01)
    feed = desk._feed(SimpleNamespace(state=SimpleNamespace()))
    now = datetime.now(UTC)
    first, second = feed.watch(desk.FEED, now), feed.watch(desk.FEED, now)
    for _ in range(5):
        a, b = await anext(first), await anext(second)
        assert a.rows == b.rows == [{"key": "warning:W1", "kind": "warning", "name": "暴雨橙色预警"}]
    assert list(feed.feeds) == [desk.FEED] and len(feed.feeds[desk.FEED].queues) == 2
    assert calls.count("alarms") <= 6  # five ticks seen by two watchers (and one more polled ahead)
    await first.aclose()
    await second.aclose()
    assert not feed.feeds  # the last desk closed: the poll stops
