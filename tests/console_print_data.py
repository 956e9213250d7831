"""Read-model rows for the console's roster, official-document, 六问 and contact-confirmation pages (shared by
tests/unit/test_printables.py and tests/browser/test_console_print.py): a week of 24-hour shifts from 08:30,
an incident whose written report has a returned, an approved and a newer draft version, a 六问 spot check with
a "no" and its follow-up, and a contact confirmation round."""
from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlmodel import Session

from store.directory import Person
from store.duty import ContactCheck, FreshnessRound, SpotCheck, SpotCheckAnswer, SpotCheckFollowup
from store.incidents import Incident, IncidentReport, ReportReceipt, ReportVersion
from store.roster import DutyShift

TZ = ZoneInfo("Asia/Shanghai")
INCIDENT = "INC-20261204-PRINT1"
CHECK = "spotcheck-callout-print"
ROUND = "freshness-20260320T0900"
QUESTIONS = [{"id": "received", "zh": "预警信息收到了吗?", "en": "Did you receive the warning?"},
             {"id": "on_duty", "zh": "人员在岗在位了吗?", "en": "Are you on duty at your post?"},
             {"id": "patrolled", "zh": "隐患点巡查了吗?", "en": "Have the hazard points been patrolled?"}]
CONTENT = {"occurred_at": "2026-12-04T01:05:00+00:00", "place": "青溪路88号工地",
           "what_happened": "脚手架坍塌，2人受伤送医。", "casualties": {"deaths": 0, "injured": 2, "missing": 0, "trapped": 0},
           "measures": "现场已封控，伤员已送区人民医院救治。", "trend": "", "next_steps": "继续核查施工单位资质。", "cause": None}


def monday_this_week() -> datetime:
    today = datetime.now(TZ).date()
    return datetime.combine(today - timedelta(days=today.weekday()), time(8, 30), TZ)


def seed(s: Session, people: dict[str, str]) -> dict[str, str]:
    """The rows; returns handy ids and names."""
    staff = Person(id="p-print-staff", name="值班员己", mobile="+8613900000405", org_unit_id="DUTY")
    s.add(staff)
    start = monday_this_week()
    for day in range(7):  # the shifts of the week: 24 hours from 08:30, the staff every day
        at = start + timedelta(days=day)
        s.add(DutyShift(starts_at=at.astimezone(UTC), ends_at=(at + timedelta(days=1)).astimezone(UTC),
                        role="duty_staff", person_id=staff.id))
    now = datetime.now(UTC)
    s.add(Incident(id=INCIDENT, workflow_id=f"incident-{INCIDENT}", title="青溪路88号工地脚手架坍塌",
                   received_at=now - timedelta(hours=3), source="12345", category="accident", subtype="建筑施工",
                   place="青溪路88号工地", summary="脚手架坍塌,2人受伤", injured=2, reporting_unit="第1街道",
                   reporter="街道值班员", rules_id="district", rules_version="v1"))
    s.flush()
    s.add(IncidentReport(incident_id=INCIDENT, seq=0, kind="written", label="书面报告", deadline_key="written",
                         state="in_review", version=3))
    leader = people["leading_leader"]
    s.add(ReportVersion(incident_id=INCIDENT, seq=0, version=1, content={**CONTENT, "measures": "现场封控。"},
                        drafted_by=people["duty_cadre"], drafted_at=now - timedelta(hours=2), decision="return",
                        reviewed_by=leader, reviewed_at=now - timedelta(minutes=110), comments="补充救治情况"))
    s.add(ReportVersion(incident_id=INCIDENT, seq=0, version=2, content=CONTENT, drafted_by=people["duty_cadre"],
                        drafted_at=now - timedelta(minutes=100), decision="approve", reviewed_by=leader,
                        reviewed_at=now - timedelta(minutes=90)))
    s.add(ReportVersion(incident_id=INCIDENT, seq=0, version=3, content={**CONTENT, "cause": "初步判断为违规搭设"},
                        drafted_by=people["duty_cadre"], drafted_at=now - timedelta(minutes=30)))
    s.add(ReportReceipt(incident_id=INCIDENT, seq=0, recipient_id="rcpt:city_planning", name="市规划和自然资源局值班室",
                        status="confirmed"))
    _spotcheck(s, people, now)
    _round(s, people, now)
    s.flush()
    return {"staff": staff.name, "leader": "副区长丙"}


def _spotcheck(s: Session, people: dict[str, str], now: datetime) -> None:
    s.add(SpotCheck(id=CHECK, callout_id="callout-print", title="暴雨橙色预警叫应", level="orange", status="running",
                    questions=QUESTIONS, opened_at=now - timedelta(hours=1)))
    s.add(SpotCheck(id="spotcheck-callout-blue", callout_id="callout-blue", title="暴雨蓝色预警叫应", level="blue",
                    status="skipped", reason="level blue is below orange", questions=QUESTIONS,
                    opened_at=now - timedelta(hours=2)))
    s.flush()
    s.add(SpotCheckAnswer(check_id=CHECK, person_id=people["330110001001.resp"], name="社区1-1防汛责任人",
                          town_id="330110001", label="村(社区)防汛责任人", state="answered",
                          answers={"received": True, "on_duty": True, "patrolled": False}, channel="voice",
                          answered_at=now - timedelta(minutes=40)))
    s.add(SpotCheckAnswer(check_id=CHECK, person_id=people["330110002001.resp"], name="社区2-1防汛责任人",
                          town_id="330110002", label="村(社区)防汛责任人", state="called"))
    s.add(SpotCheckFollowup(check_id=CHECK, key="330110001/p1", town_id="330110001", town_name="第1街道",
                            about_person_id=people["330110001001.resp"], about_name="社区1-1防汛责任人",
                            failed=["patrolled"], responsible_id=people["330110001.head"], responsible_name="街道1主任",
                            due_at=now + timedelta(hours=23)))


def _round(s: Session, people: dict[str, str], now: datetime) -> None:
    s.add(FreshnessRound(id=ROUND, year=now.year, status="running", started_at=now - timedelta(days=3),
                         deadline=now + timedelta(days=20), total=2, confirmed=1, unconfirmed=0, bounced=1))
    s.flush()
    s.add(ContactCheck(round_id=ROUND, person_id=people["330110001.head"], name="街道1主任", state="confirmed", sends=1,
                       confirmed_at=now - timedelta(days=1), confirmed_via="link"))
    s.add(ContactCheck(round_id=ROUND, person_id=people["330110002.head"], name="街道2主任", state="asked", sends=3,
                       bounced=True, last_error="undelivered"))
