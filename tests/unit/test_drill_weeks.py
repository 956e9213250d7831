"""The weekly drill count (store/drillweeks.py) over hand-built audit events: weeks start on Monday 00:00 in
Shanghai, only drills that ran count (not one that found nobody to call), each towards its own minimum, a run
counted once; the desk and the handover note read the same weeks from the database."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from activities.duty.handover import drill_week_items, handover_items
from config import get_settings
from definitions.loader import load_library
from store.audit import NewEvent, append
from store.db import session_scope
from store.drillweeks import below_text, drill_weeks, recent_weeks, week_start, weeks_from_db

TZ = ZoneInfo("Asia/Shanghai")
MINIMUM = {"district": 2, "towns": 3}
PROGRAMME = {"district_connectivity": "district", "town_spot_check": "towns"}


@dataclass
class Ev:
    subject: str
    at: datetime
    payload: dict = field(default_factory=dict)
    kind: str = "drill.started"
    chain_seq: int = 1


def local(y, m, d, hh=9, mm=0) -> datetime:
    return datetime(y, m, d, hh, mm, tzinfo=TZ)


def started(subject: str, at: datetime, drill: str = "district_connectivity", **payload) -> Ev:
    return Ev(subject, at.astimezone(UTC), {"drill": drill, **payload})


# 2026-11-30 is a Monday (ISO week 49)
MON = local(2026, 11, 30, 0, 0)


def test_a_week_starts_on_monday_midnight_in_shanghai():
    assert week_start(local(2026, 12, 6, 23, 59), TZ) == MON  # Sunday night: still week 49
    assert week_start(local(2026, 12, 7, 0, 0), TZ) == MON + timedelta(days=7)
    # Sunday 16:00 UTC is Monday 00:00 in Shanghai
    assert week_start(datetime(2026, 12, 6, 16, 0, tzinfo=UTC), TZ) == MON + timedelta(days=7)
    assert week_start(datetime(2026, 12, 6, 15, 59, tzinfo=UTC), TZ) == MON


def test_drills_run_per_week_against_the_minimums():
    events = [
        started("drill-district_connectivity-a", local(2026, 12, 1, 9, 30)),
        started("drill-district_connectivity-a", local(2026, 12, 1, 9, 30)),  # the same run twice: once
        started("drill-district_connectivity-b", local(2026, 12, 4, 9, 30), counts_as="district"),
        started("drill-town_spot_check-a", local(2026, 11, 30, 15), drill="town_spot_check"),
        started("drill-town_spot_check-b", local(2026, 12, 2, 15), drill="town_spot_check",
                gap="no town with town_head to draw from"),  # found nobody: not run
        started("drill-town_spot_check-c", local(2026, 12, 6, 23, 59), drill="town_spot_check"),
        # Monday 00:00 of the next week
        started("drill-town_spot_check-d", local(2026, 12, 7, 0, 0), drill="town_spot_check"),
        started("drill-retired-x", local(2026, 12, 3), drill="retired"),  # no longer in the programme: counts nowhere
        Ev("drill-district_connectivity-a", local(2026, 12, 1, 10).astimezone(UTC), {"total": 3}, kind="drill.reported"),
        started("drill-manual", local(2026, 12, 8, 10), drill="district_connectivity"),
    ]
    weeks = drill_weeks(events, MINIMUM, PROGRAMME, MON.astimezone(UTC), (MON + timedelta(days=14)).astimezone(UTC),
                        TZ, now=local(2026, 12, 9))
    assert [w["week"] for w in weeks] == ["2026-W49", "2026-W50"]
    w49, w50 = weeks
    assert w49["complete"] and not w50["complete"]
    assert w49["kinds"]["district"]["run"] == 2 and not w49["kinds"]["district"]["below"]
    assert w49["kinds"]["towns"]["run"] == 2 and w49["kinds"]["towns"]["below"] and w49["kinds"]["towns"]["short"] == 1
    assert w49["below"]
    assert [r["subject"] for r in w49["kinds"]["towns"]["refs"]] == ["drill-town_spot_check-a", "drill-town_spot_check-c"]
    assert w49["kinds"]["towns"]["refs"][0]["link"] == "/console/replay/drill-town_spot_check-a"
    assert below_text(w49) == "乡镇(街道)抽查演练2次(每周至少3次)"
    assert w50["kinds"]["towns"]["run"] == 1 and w50["kinds"]["district"]["run"] == 1
    assert w49["label_zh"] == "第49周(11月30日—12月6日)"


def test_a_week_with_nothing_is_below_everywhere_and_a_period_covers_whole_weeks():
    weeks = drill_weeks([], MINIMUM, PROGRAMME, local(2026, 12, 3).astimezone(UTC), local(2026, 12, 4).astimezone(UTC),
                        TZ, now=local(2027, 1, 1))
    assert len(weeks) == 1 and weeks[0]["start"] == MON
    assert weeks[0]["below"] and {k: v["short"] for k, v in weeks[0]["kinds"].items()} == {"district": 2, "towns": 3}


def _write(events: list[Ev]) -> None:
    with session_scope() as s:
        append(s, [NewEvent(subject=e.subject, kind=e.kind, step_id="started", workflow_id=e.subject, at=e.at,
                            payload=e.payload) for e in events])


def test_from_the_audit_trail_the_desk_and_the_handover_note(db_url):
    _write([started("drill-district_connectivity-1", local(2026, 12, 1, 9, 30)),
            started("drill-district_connectivity-2", local(2026, 12, 4, 9, 30)),
            started("drill-town_spot_check-1", local(2026, 12, 2, 15), drill="town_spot_check"),
            started("drill-town_spot_check-2", local(2026, 12, 8, 15), drill="town_spot_check")])
    with session_scope(write=False) as s:
        weeks = weeks_from_db(s, MINIMUM, PROGRAMME, MON, MON + timedelta(days=8), TZ, now=local(2026, 12, 9))
    assert [(w["kinds"]["district"]["run"], w["kinds"]["towns"]["run"]) for w in weeks] == [(2, 1), (0, 1)]
    assert weeks[0]["kinds"]["towns"]["refs"][0]["seq"] == 1

    duty = load_library(get_settings().definitions_dir).duty()
    at = local(2026, 12, 9, 8, 0).astimezone(UTC)
    with session_scope(write=False) as s:
        recent = recent_weeks(s, duty, at, TZ)
        items = drill_week_items(s, at, duty)
        plain = handover_items(s, at)
    assert recent["last"]["week"] == "2026-W49" and recent["last"]["complete"] and recent["last"]["below"]
    assert recent["this"]["week"] == "2026-W50" and not recent["this"]["complete"]
    assert [i.kind for i in items] == ["drill", "drill"]
    assert items[0].ref == "drill-week/2026-W49"
    assert items[0].text == "上周演练未达最低要求(第49周(11月30日—12月6日)):乡镇(街道)抽查演练1次(每周至少3次)"
    assert items[1].text.startswith("本周演练截至交班尚未达标(第50周") and "区级连通性演练0次(每周至少2次)" in items[1].text
    assert not any(i.ref.startswith("drill-week/") for i in plain), "without the definitions no drill count"


def test_a_week_that_met_its_minimums_is_not_in_the_note(db_url):
    _write([started(f"drill-district_connectivity-{i}", local(2026, 12, 1 + i, 9, 30)) for i in range(2)]
           + [started(f"drill-town_spot_check-{i}", local(2026, 11, 30 + i, 15) if i == 0 else local(2026, 12, i, 15),
                      drill="town_spot_check") for i in range(3)])
    duty = load_library(get_settings().definitions_dir).duty()
    with session_scope(write=False) as s:
        items = drill_week_items(s, local(2026, 12, 7, 8, 0), duty)
    assert [i.ref for i in items] == ["drill-week/2026-W50"], "last week met both minimums; this week has just begun"


async def test_the_desk_flags_a_week_below_the_minimum(db_url):
    import re
    from api.app import create_app
    from api.console.pages import library
    from api.services import desk as services
    from store.auth import create_token
    from tests.factories import small_district
    from tests.helpers import clear_of_local_midnight, console_login

    clear_of_local_midnight()  # "this week" here and in the desk, seconds apart
    today = datetime.now(TZ)
    this_monday = week_start(today, TZ)
    _write([started("drill-town_spot_check-w", this_monday - timedelta(days=3), drill="town_spot_check"),
            started("drill-district_connectivity-w", this_monday - timedelta(days=4)),
            started("drill-district_connectivity-v", this_monday - timedelta(days=5))])
    with session_scope() as s:
        people = small_district(s)
        token = create_token(s, "duty_chief", person_id=people["duty_chief"], label="chief")
    with session_scope(write=False) as s:
        weeks = services.desk(s, library(), datetime.now(UTC))["drill_weeks"]
    assert weeks["last"]["kinds"]["district"]["run"] == 2 and weeks["last"]["kinds"]["towns"]["run"] == 1
    assert weeks["last"]["short_zh"] == "乡镇(街道)抽查演练1次(每周至少3次)"
    assert weeks["this"]["start"] == this_monday

    web = await console_login(create_app(temporal_client=object()), token)
    try:
        page = (await web.get("/console/desk")).text
    finally:
        await web.aclose()
    card = page[page.index('id="desk-drill-weeks"'):]
    card = card[:card.index("</section>")]
    assert "本周演练计数" in card and "上周" in card
    flagged = re.findall(r'<tr class="overdue" data-below="1">(.*?)</tr>', card, re.S)
    assert len(flagged) == 1 and "乡镇(街道)抽查演练" in flagged[0] and "未达最低要求" in flagged[0]
    assert "已开展 1 次 / 每周至少 3 次" in flagged[0]


def test_the_first_working_day_of_a_month():
    from store.bulletins import first_working_day, month_range, previous_month

    assert first_working_day(2026, 12).isoformat() == "2026-12-01"  # a Tuesday
    assert first_working_day(2026, 11).isoformat() == "2026-11-02"  # the 1st is a Sunday
    assert first_working_day(2026, 8).isoformat() == "2026-08-03"  # the 1st is a Saturday
    assert previous_month(datetime(2026, 12, 31, 17, 0, tzinfo=UTC), TZ) == "2026-12"  # 1 January 01:00 local
    assert previous_month(datetime(2027, 1, 4, 1, 0, tzinfo=UTC), TZ) == "2026-12"
    since, until = month_range("2026-12", TZ)
    assert (since.isoformat(), until.isoformat()) == ("2026-12-01T00:00:00+08:00", "2027-01-01T00:00:00+08:00")


async def test_the_drill_weeks_api(db_url, monkeypatch):
    import httpx

    from api.app import create_app

    monkeypatch.setenv("YINGJI_ADMIN_TOKEN", "duty-admin")
    get_settings.cache_clear()
    _write([started("drill-district_connectivity-1", local(2026, 12, 1, 9, 30)),
            started("drill-district_connectivity-2", local(2026, 12, 4, 9, 30)),
            started("drill-town_spot_check-1", local(2026, 12, 2, 15), drill="town_spot_check")])
    admin = {"Authorization": "Bearer duty-admin"}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(temporal_client=object())),
                                 base_url="http://t") as api:
        r = await api.get("/api/drill-weeks", params={"from": "2026-11-30", "to": "2026-12-13"}, headers=admin)
        assert r.status_code == 200, r.text
        weeks = r.json()["weeks"]
        assert [(w["week"], w["kinds"]["district"]["run"], w["kinds"]["towns"]["run"], w["below"]) for w in weeks] == [
            ("2026-W49", 2, 1, True), ("2026-W50", 0, 0, True)]
        assert weeks[0]["short_zh"] == "乡镇(街道)抽查演练1次(每周至少3次)"
        assert r.json()["weekly_minimum"] == {"district": 2, "towns": 3}
        r = await api.get("/api/drill-weeks", params={"from": "2026-12-13", "to": "2026-11-30"}, headers=admin)
        assert r.status_code == 422 and "date_to is before date_from" in r.text
        r = await api.get("/api/drill-weeks", params={"from": "2020-01-01", "to": "2026-11-30"}, headers=admin)
        assert r.status_code == 422 and "weeks" in r.text


def test_the_bulletins_schedule_knows_the_national_holidays():
    """1 October 2026 and the days after are the National Day holiday: the bulletin waits for the 8th; 1 May is Labour
    Day (the 6th); a year the calendar does not know yet falls back on Monday to Friday."""
    from temporalio.client import ScheduleRange

    from api.services.duty.schedules import first_working_day_spec
    from definitions.schema.calendar import national_calendar
    from store.bulletins import first_working_day

    cal = national_calendar([2026])
    assert first_working_day(2026, 10, cal).isoformat() == "2026-10-08"
    assert first_working_day(2026, 5, cal).isoformat() == "2026-05-06"
    assert first_working_day(2026, 2, cal).isoformat() == "2026-02-02"
    spec = first_working_day_spec("Asia/Shanghai", 9, 0, cal)
    explicit = {(c.year[0].start, c.month[0].start): c.day_of_month[0].start for c in spec.calendars
                if c.comment.startswith("2026-")}
    # 2026-01-04 is a Sunday worked for the New Year holiday (调休): the first working day of January
    assert explicit[(2026, 10)] == 8 and explicit[(2026, 5)] == 6 and explicit[(2026, 1)] == 4
    assert len(explicit) == 12
    later = [c for c in spec.calendars if not c.comment.startswith("2026-")]
    assert len(later) == 3 and all(c.year == [ScheduleRange(2027, 2100)] for c in later)
    assert [c.year for c in first_working_day_spec("Asia/Shanghai", 9, 0).calendars] == [
        first_working_day_spec("Asia/Shanghai", 9, 0).calendars[0].year] * 3  # no calendar: the same three, every year
