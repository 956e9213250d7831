"""The work order's definitions (schema, loader errors with file:line) and its rules of order, without a server:
who may take each step on which order, and in which state."""
from __future__ import annotations

import shutil
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from definitions.loader import load_library, load_or_raise
from definitions.schema.calendar import add_working_days, national_calendar
from workflows.workorder import (AssignIn, Assignment, CloseIn, Deadline, Order, SatisfactionIn, SignIn, Visit,
                                 WorkOrderInfo, WorkOrderState, refusal)

DEFINITIONS = Path(__file__).resolve().parents[2] / "definitions"
NOW = datetime(2026, 12, 4, 2, 0, tzinfo=UTC)  # a Friday, 10:00 in Beijing


def rules():
    return load_or_raise(DEFINITIONS).workorder_rules().model


def test_the_shipped_rules_propose_units_limits_and_fire_copies():
    r = rules()
    assert r.propose("积水内涝", "330110001") == "330110001" and r.propose("积水内涝", None) == "D02"
    assert r.propose("燃气泄漏", "330110001") == "D06" and r.propose("其他", None) is None
    assert r.propose("不认识的类别", "330110002") == "330110002"
    normal, urgent = r.limits("积水内涝", "normal"), r.limits("积水内涝", "urgent")
    assert (normal.sign, normal.feedback, normal.complete_working_days) == (timedelta(minutes=30), timedelta(hours=24), 5)
    assert urgent.sign == timedelta(minutes=10) and urgent.complete == timedelta(hours=24)
    assert r.limits("燃气泄漏", "normal").sign == timedelta(minutes=10)  # the category's own limits
    assert r.copies_fire("火情", "12345", "normal") and r.copies_fire("其他", "119", "normal")
    assert r.copies_fire("其他", "12345", "urgent") and not r.copies_fire("积水内涝", "12345", "normal")


def test_five_working_days_skip_the_weekend_in_local_time():
    assert add_working_days(NOW, 5, 8) == NOW + timedelta(days=7)  # Friday → the next Friday
    saturday = datetime(2026, 12, 5, 2, 0, tzinfo=UTC)
    assert add_working_days(saturday, 1, 8) == datetime(2026, 12, 7, 16, 0, tzinfo=UTC)  # Monday 24:00, local
    assert add_working_days(saturday, 5, 8) == datetime(2026, 12, 11, 16, 0, tzinfo=UTC)  # Friday 24:00, local
    late_friday = datetime(2026, 12, 4, 17, 0, tzinfo=UTC)  # Saturday 01:00 in Beijing: from Monday
    assert (add_working_days(late_friday, 1, 8) + timedelta(hours=8)).weekday() == 1


def test_working_days_follow_the_national_holidays_and_the_moved_working_days():
    cal = national_calendar([2026])
    assert cal.years_known == [2026] and date(2026, 10, 1) in cal.holidays and date(2026, 10, 10) in cal.workdays
    wednesday = datetime(2026, 9, 30, 2, 0, tzinfo=UTC)  # 10:00 in Beijing, the eve of National Day
    # 10-01…10-07 off; 10-08 (1), 10-09 (2), Saturday 10-10 worked (3), 10-12 (4), 10-13 (5): the same time of day
    assert add_working_days(wednesday, 5, 8, cal) == datetime(2026, 10, 13, 2, 0, tzinfo=UTC)
    assert add_working_days(wednesday, 5, 8) == datetime(2026, 10, 7, 2, 0, tzinfo=UTC)  # weekdays only, as before
    # from a holiday: whole days from the first working day, to the end (24:00) of the last one
    assert add_working_days(datetime(2026, 10, 2, 2, 0, tzinfo=UTC), 1, 8, cal) == datetime(2026, 10, 8, 16, 0, tzinfo=UTC)
    # the Saturday worked for the Spring Festival (02-14) is a working day; the festival's weekdays are not
    assert add_working_days(datetime(2026, 2, 13, 2, 0, tzinfo=UTC), 1, 8, cal) == datetime(2026, 2, 14, 2, 0, tzinfo=UTC)
    assert add_working_days(datetime(2026, 2, 14, 2, 0, tzinfo=UTC), 1, 8, cal) == datetime(2026, 2, 24, 2, 0, tzinfo=UTC)


def test_the_offices_calendar_adds_a_year_the_national_one_does_not_know(tmp_path):
    root = tmp_path / "definitions"
    shutil.copytree(DEFINITIONS, root)
    (root / "calendar.yaml").write_text("holidays: [2031-01-01]\nworkdays: [2031-01-04]\n", encoding="utf-8")
    cal = load_library(root).work_calendar([2031])
    assert cal.years_known == [] and cal.holidays == [date(2031, 1, 1)] and cal.workdays == [date(2031, 1, 4)]
    assert not cal.is_working_day(date(2031, 1, 1)) and cal.is_working_day(date(2031, 1, 4))  # a Wednesday; a Saturday
    (root / "calendar.yaml").write_text("holidays: [2031-01-01]\nworkdays:\n  - 2031-01-01\n", encoding="utf-8")
    errors = [str(e) for e in load_library(root).errors]
    assert any(e.startswith(f"{root / 'calendar.yaml'}:1") and "both as a holiday and as a working day" in e
               for e in errors), errors
    (root / "calendar.yaml").write_text("holidays: [2031-13-01]\n", encoding="utf-8")
    errors = [str(e) for e in load_library(root).errors]
    assert any(e.startswith(f"{root / 'calendar.yaml'}:1") and "'2031-13-01' is not a valid date" in e
               for e in errors), errors


def test_a_bad_rules_file_is_refused_with_its_file_and_line(tmp_path):
    root = tmp_path / "definitions"
    shutil.copytree(DEFINITIONS, root)
    path = root / "workorders" / "default.yaml"
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace("urgent: {sign: 10m, feedback: 2h, complete: 24h}",
                                 "urgent: {sign: 10m, feedback: 2h, complete: 24h, complete_working_days: 2}"),
                    encoding="utf-8")
    lib = load_library(root)
    [err] = [e for e in lib.errors if e.file.endswith("workorders/default.yaml")]
    assert err.line == 14 and "exactly one of complete" in str(err)
    path.write_text(text.replace("escalate: duty_chief", "escalate: mayor"), encoding="utf-8")
    errs = [e for e in load_library(root).errors if e.file.endswith("workorders/default.yaml")]
    assert errs and "unknown recipient 'mayor'" in str(errs[0]) and errs[0].line is not None


def order(status: str = "assigned", signed: bool = False) -> Order:
    s = WorkOrderState(received_at=NOW, status=status)
    if status != "received":
        s.assignments.append(Assignment(seq=1, unit_id="D06", unit_name="区住房和城乡建设局", answerers=["p-d06", "p-d06dep"],
                                        assigned_at=NOW, assigned_by="p-cadre", signed_at=NOW if signed else None,
                                        deadlines=[Deadline(key="sign", label="签收", due_at=NOW + timedelta(minutes=30))]))
    info = WorkOrderInfo(id="workorder-12345-T1", source="12345", ticket="T1", category="燃气泄漏", place="p", words="w")
    return Order(s, rules(), info)


def test_role_and_object_the_unit_steps_are_the_assigned_units():
    o = order()
    assert refusal(o, "sign", SignIn(actor="p-d06", role="duty_staff"), NOW) is None
    assert refusal(o, "sign", SignIn(actor="p-d06dep", role="commander"), NOW) is None  # the deputy, any role
    kind, why = refusal(o, "sign", SignIn(actor="p-d01", role="duty_staff"), NOW)  # another unit's head
    assert kind == "forbidden" and "非区住房和城乡建设局人员" in why
    assert refusal(o, "sign", SignIn(actor="p-cadre", role="duty_cadre"), NOW) is None  # the duty office, on behalf
    kind, why = refusal(o, "sign", SignIn(actor="p-d06", role="supervisor"), NOW)
    assert kind == "forbidden" and "督查不能签收工单" in why
    kind, _ = refusal(order(signed=True), "sign", SignIn(actor="p-d06", role="duty_staff"), NOW)
    assert kind == "conflict"


def test_the_duty_office_assigns_and_closes_in_order():
    kind, why = refusal(order("received"), "assign", AssignIn(actor="p-d06", role="commander", unit_id="D06"), NOW)
    assert kind == "forbidden" and "指挥长不能分拨工单" in why
    assert refusal(order("received"), "assign", AssignIn(actor="p-c", role="duty_staff", unit_id="D06"), NOW) is None
    kind, _ = refusal(order("signed", signed=True), "assign", AssignIn(actor="p-c", role="duty_staff", unit_id="D02"), NOW)
    assert kind == "conflict"  # signed for: no longer reassigned
    kind, why = refusal(order("signed", signed=True), "close", CloseIn(actor="p-c", role="duty_cadre", decision="close"), NOW)
    assert kind == "conflict" and "单位办结后方可审核" in why
    kind, why = refusal(order("completed", signed=True), "close", CloseIn(actor="p-c", role="duty_staff",
                                                                          decision="close"), NOW)
    assert kind == "forbidden"  # 专业值班员 is not among the rules' close roles
    kind, _ = refusal(order("completed", signed=True), "close", CloseIn(actor="p-c", role="duty_cadre",
                                                                        decision="send_back"), NOW)
    assert kind == "invalid"


def test_the_hotline_answers_the_satisfaction_once():
    o = order("closed", signed=True)
    o.s.visits.append(Visit(version=1, result="r"))
    req = SatisfactionIn(actor="hotline-platform", role="hotline", satisfaction="满意")
    assert refusal(o, "satisfaction", req, NOW)[0] == "conflict"  # the result is still being posted
    o.s.visits[-1].posted_at = NOW
    assert refusal(o, "satisfaction", req, NOW) is None
    kind, _ = refusal(o, "satisfaction", SatisfactionIn(actor="x", role="commander", satisfaction="满意"), NOW)
    assert kind == "forbidden"
    o.s.visits[-1].satisfaction = "满意"
    assert refusal(o, "satisfaction", req, NOW)[0] == "conflict"
