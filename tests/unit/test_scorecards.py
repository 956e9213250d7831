"""Scorecards per unit computed from hand-built audit events (store/scorecards.py): 叫应 with a late answer and a
drill that must not count, drills counted apart, 信息报送 (the unit's own report from 知悉 too), 六问, 督办, contacts."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

from store.replay import Row
from store.scorecards import (
    activation_figures,
    callout_figures,
    contact_figures,
    drill_figures,
    replay_link,
    reporting_figures,
    spotcheck_figures,
)
from tests.activation_trail import trail

T0 = datetime(2026, 7, 1, 3, 10, tzinfo=UTC)


class Events:
    def __init__(self, workflow: str) -> None:
        self.rows: list[Row] = []
        self.workflow = workflow

    def add(self, kind: str, minutes: float, step: str, channel: str | None = None, actor: str = "system",
            workflow: str | None = None, **payload) -> None:
        self.rows.append(Row(len(self.rows) + 1, kind, T0 + timedelta(minutes=minutes), actor, channel, step,
                             workflow or self.workflow, payload))


UNITS = {"towns/P1": "T1", "towns/P2": "T1", "towns/P3": "T1", "departments/P4": "D01", "villages/P5": "T1"}


def unit_of(wid, key):
    return UNITS.get(key)


def _callout(wid: str, drill: bool = False) -> list[Row]:
    """T1: P1 answers after 2 min, P2 after 10 min, P3 is escalated and never answers, P5 answers only after the
    target was given up (late); D01: P4 answers after 4 min."""
    e = Events(f"{wid}/shard-0")
    e.add("callout.started", 0, "started", workflow=wid, level="orange", drill=drill, towns=["T1"])
    for t in UNITS:
        e.add("callout.sent", 0, f"send/{t}/0.0/p/sms", "sms", target=t, person_id=t, purpose="notify", status="sent")
    e.add("callout.ack", 2, "towns/P1/ack", "sms", target="towns/P1", person_id="P1", state="acknowledged")
    e.add("callout.ack", 4, "departments/P4/ack", "sms", target="departments/P4", person_id="P4",
          state="acknowledged")
    e.add("callout.ack", 10, "towns/P2/ack", "sms", target="towns/P2", person_id="P2", state="acknowledged")
    e.add("callout.escalated", 15, "towns/P3/escalated", target="towns/P3", person_id="D3", state="escalated")
    e.add("callout.unreachable", 30, "towns/P3/unreachable", target="towns/P3", state="unreachable")
    e.add("callout.unreachable", 30, "villages/P5/unreachable", target="villages/P5", state="unreachable")
    e.add("callout.ack.late", 40, "villages/P5/ack/late", "sms", target="villages/P5", person_id="P5")
    e.add("callout.ended", 41, "ended", workflow=wid, status="completed")
    return e.rows


def test_callout_figures_per_unit_late_answer_and_drill_apart():
    figs = callout_figures({"W1": _callout("callout-1"), "drill-W": _callout("callout-drill", drill=True)}, unit_of)
    t1, d01 = figs["T1"], figs["D01"]
    assert t1["called"]["value"] == 4  # the drill's four do not count
    assert t1["answered"]["value"] == 2
    assert t1["answered_late"]["value"] == 1
    assert t1["never"]["value"] == 1
    assert t1["escalated"]["value"] == 1
    assert t1["time_to_answer"]["median_s"] == 360.0 and t1["time_to_answer"]["p90_s"] == 600.0
    assert t1["answer_rate"] == 0.5
    assert t1["per_tier"]["villages"] == {"called": 1, "answered": 0, "answered_late": 1, "never": 0, "escalated": 0}
    assert d01["called"]["value"] == 1 and d01["answered"]["value"] == 1
    assert d01["time_to_answer"]["median_s"] == 240.0
    # every figure names the events it came from, linking to the replay; none is the drill's
    late = t1["answered_late"]["refs"][0]
    assert late["subject"] == "W1" and late["link"] == replay_link("W1") == "/console/replay/W1"
    assert _callout("callout-1")[late["seq"] - 1].kind == "callout.ack.late"
    esc = t1["escalated"]["refs"][0]
    assert _callout("callout-1")[esc["seq"] - 1].kind == "callout.escalated"
    assert all(r["subject"] == "W1" for f in ("called", "answered", "never") for r in t1[f]["refs"])


def test_only_a_drill_counts_nothing():
    assert callout_figures({"drill-W": _callout("callout-drill", drill=True)}, unit_of) == {}


def _incident(drill: bool = False) -> list[Row]:
    """Verbal report 10 min late; written report on time; 续报一 never made, overdue."""
    e = Events("incident-INC-1")
    e.add("incident.received", 0, "received", None, "p-cadre", title="脚手架坍塌", severity="IV", town_id="T1",
          drill=drill, deadlines={"verbal": (T0 + timedelta(minutes=30)).isoformat(),
                                  "written": (T0 + timedelta(hours=1)).isoformat()})
    e.add("report.verbal.made", 40, "verbal", actor="p-cadre", to_whom="区政府总值班室", on_time=False)
    e.add("report.verbal.late", 40, "deadline/verbal/late", actor="p-cadre", deadline="verbal", label="口头报告",
          late_by_s=600, late_by_min=10, due_at=(T0 + timedelta(minutes=30)).isoformat())
    e.add("report.written.submitted", 55, "report/0/submitted", actor="p-cadre", seq=0, label="书面报告",
          approved_by="p-leader", on_time=True)
    e.add("report.followup.overdue", 60 * 25, "deadline/followup_1/overdue", deadline="followup_1", label="续报一",
          due_at=(T0 + timedelta(minutes=55, hours=24)).isoformat())
    return e.rows


def test_reporting_figures_on_time_late_missing():
    figs = reporting_figures({"INC-1": _incident(), "INC-D": _incident(drill=True)},
                             lambda p: [p["town_id"]] if p.get("town_id") else [])
    t1 = figs["T1"]
    assert (t1["owed"]["value"], t1["on_time"]["value"], t1["late"]["value"], t1["missing"]["value"]) == (3, 1, 1, 1)
    assert t1["late"]["refs"][0]["late_by_s"] == 600 and t1["late_by_max_s"] == 600
    assert t1["missing"]["refs"][0]["state"] == "overdue" and t1["missing"]["refs"][0]["subject"] == "INC-1"
    assert list(figs) == ["T1"]


def test_spotcheck_figures():
    e = Events("spotcheck-1")
    e.add("spotcheck.opened", 0, "opened", callout_id="callout-1",
          sample=[{"person_id": "v1", "name": "甲", "village": "一村", "town": "青溪镇"},
                  {"person_id": "v2", "name": "乙", "village": "二村", "town": "白沙镇"}])
    e.add("spotcheck.answered", 5, "answer/v1", person_id="v1", no=["q2", "q5"], answers={})
    e.add("spotcheck.answered", 6, "answer/v2", person_id="v2", no=[], answers={})
    e.add("spotcheck.answered.late", 7, "answer/v2/late", person_id="v2", no=["q1"], answers={}, late=True)
    e.add("spotcheck.followup.overdue", 60, "followup/v1/overdue", key="v1", town_id="T1", town="青溪镇")
    figs = spotcheck_figures({"spotcheck-1": e.rows}, {"青溪镇": "T1", "白沙镇": "T2"})
    assert figs["T1"]["checks"]["value"] == 1 and figs["T2"]["checks"]["value"] == 1
    assert figs["T1"]["answered_no"]["value"] == 2 and figs["T2"]["answered_no"]["value"] == 1
    assert figs["T1"]["followups_overdue"]["value"] == 1 and figs["T2"]["followups_overdue"]["value"] == 0
    assert figs["T1"]["followups_overdue"]["refs"][0]["seq"] == 5


def test_activation_figures_tasks_and_directives_of_the_unit():
    figs = activation_figures({"activation/INC-1": trail()}, {"rescue": "D09", "traffic": "D02"}.get)
    d09 = figs["D09"]
    assert d09["assigned"]["value"] == 2  # 巡堤查险 (late), 防汛物资前置 (on time)
    assert d09["late"]["value"] == 1 and d09["late"]["refs"][0]["late_by_s"] == 1200
    assert d09["on_time"]["value"] == 1 and d09["overdue"]["value"] == 0
    assert figs["D02"]["assigned"]["value"] == 1 and figs["D02"]["late"]["value"] == 0


def test_drill_figures_count_the_runs_that_drew_a_unit_and_answers_within_the_window():
    run = Events("drill-1")
    run.add("drill.started", 0, "started", drill=True)
    run.add("drill.reported", 60, "reported", window_s=600, drill_marker=True)  # a 10-minute window for this drill
    figs = drill_figures({"drill-1": run.rows, "drill-1/callout": _callout("drill-1/callout", drill=True)}, unit_of)
    t1, d01 = figs["T1"], figs["D01"]
    assert t1["drills"]["value"] == 1 and t1["drills"]["refs"][0]["subject"] == "drill-1"
    assert t1["called"]["value"] == 4
    assert t1["responded"]["value"] == 2  # P1 (2 min), P2 (10 min: within); P3 never, P5 late
    assert t1["response_rate"] == 0.5 and d01["responded"]["value"] == 1
    # without its report the window is 30 minutes; a real call-out is no drill
    assert drill_figures({"drill-2/callout": _callout("drill-2/callout", drill=True)}, unit_of)["T1"]["responded"][
        "value"] == 2
    assert drill_figures({"callout-1": _callout("callout-1")}, unit_of) == {}


def test_the_reporting_units_own_report_counts_late_from_when_it_knew():
    e = Events("incident-INC-2")
    e.add("incident.received", 0, "received", None, "p-cadre", title="雷击", severity="IV", town_id="T1",
          reporting_unit="区气象局", reporting_unit_id="D04", deadlines={},
          unit_report={"unit": "区气象局", "unit_id": "D04", "known_at": T0.isoformat(), "late_by_s": 1200})
    on_time = Events("incident-INC-3")
    on_time.add("incident.received", 0, "received", None, "p-cadre", title="雷击", severity="IV", town_id="T1",
                reporting_unit="区气象局", reporting_unit_id="D04", deadlines={},
                unit_report={"unit": "区气象局", "unit_id": "D04", "late_by_s": 0})
    figs = reporting_figures({"INC-2": e.rows, "INC-3": on_time.rows},
                             lambda p: [x for x in (p.get("reporting_unit_id"), p.get("town_id")) if x])
    d04 = figs["D04"]
    assert d04["own_reports"]["value"] == 2 and d04["own_late"]["value"] == 1
    assert d04["own_late"]["refs"][0] == {"subject": "INC-2", "link": replay_link("INC-2"), "seq": 1,
                                          "what": "区气象局报告", "late_by_s": 1200}
    assert d04["own_late_by_max_s"] == 1200
    assert "T1" not in figs  # the town is not the unit that reported (and no limit of the chain was due)


def test_contact_figures_per_unit():
    status = {"P1": {"name": "甲", "stale": False, "failing": False, "error": None},
              "P2": {"name": "乙", "stale": True, "failing": True, "error": "undelivered"},
              "P4": {"name": "丁", "stale": False, "failing": False, "error": None},
              "PX": {"name": "无岗", "stale": True, "failing": False, "error": None}}
    figs = contact_figures(status, {"P1": "T1", "P2": "T1", "P4": "D01"})
    t1 = figs["T1"]
    assert (t1["persons"]["value"], t1["confirmed"]["value"], t1["stale"]["value"], t1["failing"]["value"]) == (2, 1, 1, 1)
    assert t1["confirmed_rate"] == 0.5 and t1["failing"]["refs"][0]["what"] == "乙"
    assert figs["D01"]["confirmed_rate"] == 1.0 and set(figs) == {"T1", "D01"}


def test_a_town_renamed_mid_period_keeps_its_spot_checks():
    """青溪镇 became 青溪街道 during the month: the check's events name the town as it was; its persons' posts say
    which unit they are."""
    e = Events("spotcheck-2")
    e.add("spotcheck.opened", 0, "opened", callout_id="callout-1",
          sample=[{"person_id": "v1", "name": "甲", "village": "一村", "town": "青溪镇"}])
    e.add("spotcheck.answered", 5, "answer/v1", person_id="v1", no=["q3"], answers={})
    e.add("spotcheck.followup.overdue", 60, "followup/v1/overdue", key="v1", town="青溪镇")
    renamed = spotcheck_figures({"spotcheck-2": e.rows}, {"青溪街道": "T1"}, {"v1": "T1"})
    assert renamed["T1"]["checks"]["value"] == 1 and renamed["T1"]["answered_no"]["value"] == 1
    assert renamed["T1"]["followups_overdue"]["value"] == 1
    assert spotcheck_figures({"spotcheck-2": e.rows}, {"青溪街道": "T1"}) == {}  # by the name alone it was lost
