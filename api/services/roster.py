"""The weekly duty roster 值班表: an ISO week (2026-W49) day by day, each post of the 1+1+X+X (带班领导, 值班长,
值班干部, 专业值班员) with the persons on duty, their shift's start and end (local time) and their duty phone;
run with a database session.

A shift is listed on a day when it starts that day or covers its noon: a 24-hour shift from 08:30 is listed
on the day it starts, a shift of several days on each of its days."""
from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlmodel import Session, col, select

from api.services.errors import ServiceError
from store.directory import Person, mask_mobile
from store.roster import DUTY_ROLES, overlapping

WEEK = re.compile(r"^(\d{4})-W(\d{1,2})$")
WEEKDAYS_ZH = ("一", "二", "三", "四", "五", "六", "日")
WEEKDAYS_EN = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


class RosterError(ServiceError):
    """A week that is not one."""


def week_of(d: date) -> str:
    year, week, _ = d.isocalendar()
    return f"{year}-W{week:02d}"


def monday_of(week: str) -> date:
    """The Monday of an ISO week written 2026-W49. Raises RosterError 422."""
    m = WEEK.match(week.strip())
    if m is None:
        raise RosterError(422, f"周次格式应为 2026-W49:{week[:20]!r} / a week is written 2026-W49")
    try:
        return date.fromisocalendar(int(m[1]), int(m[2]), 1)
    except ValueError as exc:
        raise RosterError(422, f"没有这一周:{week!r} / no such week") from exc


def _time_label(start: datetime, end: datetime, day: date) -> str:
    """08:30–次日08:30; a shift that does not start or end that day or the next names its dates."""
    def one(at: datetime) -> str:
        if at.date() == day:
            return f"{at:%H:%M}"
        if at.date() == day + timedelta(days=1):
            return f"次日{at:%H:%M}"
        return f"{at.month}月{at.day}日{at:%H:%M}"

    return f"{one(start)}–{one(end)}"


def _listed_on(start: datetime, end: datetime, day: date, tz: ZoneInfo) -> bool:
    noon = datetime.combine(day, time(12), tz)
    return start.date() == day or start <= noon < end


def week_roster(s: Session, week: str, tz_name: str, full_numbers: bool) -> dict[str, Any]:
    """The week's days and, per post, each day's persons with their shift times and duty phone (masked unless
    `full_numbers`: the duty office sees them whole)."""
    tz = ZoneInfo(tz_name)
    monday = monday_of(week)
    days = [monday + timedelta(days=i) for i in range(7)]
    start = datetime.combine(monday, time(0), tz)
    shifts = overlapping(s, start, start + timedelta(days=7))
    people = {p.id: p for p in s.exec(select(Person).where(col(Person.id).in_({x.person_id for x in shifts})))} \
        if shifts else {}
    rows = []
    for role, (zh, en) in DUTY_ROLES.items():
        cells = []
        for day in days:
            entries = []
            for x in (x for x in shifts if x.role == role):
                a, b = x.starts_at.astimezone(tz), x.ends_at.astimezone(tz)
                if not _listed_on(a, b, day, tz):
                    continue
                p = people.get(x.person_id)
                mobile = (p.mobile if full_numbers else mask_mobile(p.mobile)) if p and p.mobile else ""
                entries.append({"name": p.name if p else x.person_id, "mobile": mobile, "tel": full_numbers and bool(mobile),
                                "times": _time_label(a, b, day), "starts_at": a, "ends_at": b})
            cells.append(entries)
        rows.append({"role": role, "zh": zh, "en": en, "cells": cells})
    times = sorted({e["times"] for r in rows for c in r["cells"] for e in c if "月" not in e["times"]})  # the day's shifts
    year, number, _ = monday.isocalendar()
    sunday = days[-1]
    return {"week": week_of(monday), "monday": monday, "sunday": sunday, "year": year, "number": number,
            "range_zh": f"{monday.month}月{monday.day}日–{sunday.month}月{sunday.day}日",
            "range_en": f"{monday:%Y-%m-%d} – {sunday:%Y-%m-%d}",
            "days": [{"date": d, "zh": f"{d.month}月{d.day}日 周{WEEKDAYS_ZH[i]}", "en": f"{WEEKDAYS_EN[i]} {d:%m-%d}",
                      "today": d == datetime.now(tz).date()} for i, d in enumerate(days)],
            "rows": rows, "shift_times": times, "empty": not shifts,
            "prev": week_of(monday - timedelta(days=7)), "next": week_of(monday + timedelta(days=7)),
            "this_week": week_of(datetime.now(tz).date())}
