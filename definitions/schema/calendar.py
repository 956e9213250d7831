"""The duty office's working days: Monday to Friday, less the national public holidays, plus the weekend days work
moves to (调休), as the State Council announces them each year.

The national days come from the `chinesecalendar` package (the State Council's notices, year by year) for the years
it knows; `definitions/calendar.yaml` adds what it does not know yet (a year announced after the installed release)
and local arrangements. A procedure that counts working days gets the calendar of the years it may need in its
input (`WorkCalendar`), so that its workflow counts without I/O and replays the same whatever is installed later.
"""
from __future__ import annotations

from datetime import date, datetime, timedelta

from pydantic import Field, model_validator

from definitions.schema.common import Strict


class CalendarFile(Strict):
    """`definitions/calendar.yaml`: days the national calendar does not know or the office changes."""

    holidays: list[date] = Field(default_factory=list, description="days off that are not in the national calendar")
    workdays: list[date] = Field(default_factory=list, description="weekend days worked (调休) not in the national "
                                                                  "calendar")

    @model_validator(mode="after")
    def _apart(self) -> "CalendarFile":
        both = sorted(set(self.holidays) & set(self.workdays))
        if both:
            raise ValueError(f"{', '.join(map(str, both))} listed both as a holiday and as a working day")
        return self


class WorkCalendar(Strict):
    """The holidays and moved working days of some years, and which years the national calendar covered."""

    holidays: list[date] = Field(default_factory=list)
    workdays: list[date] = Field(default_factory=list)
    years_known: list[int] = Field(default_factory=list, description="years whose national days are included")

    def is_working_day(self, d: date) -> bool:
        return d in self.workdays or (d.weekday() < 5 and d not in self.holidays)

    def first_working_day(self, d: date) -> date:
        """`d` if it is a working day, else the next one."""
        while not self.is_working_day(d):
            d += timedelta(days=1)
        return d


WEEKDAYS_ONLY = WorkCalendar()


def national_calendar(years: list[int], extra: CalendarFile | None = None) -> WorkCalendar:
    """The national holidays and moved working days of `years` that the `chinesecalendar` package knows, with the
    office's own additions."""
    import chinese_calendar

    wanted = set(years)
    holidays = {d for d in chinese_calendar.holidays if d.year in wanted}
    workdays = {d for d in chinese_calendar.workdays if d.year in wanted and d.weekday() >= 5}
    known = sorted(y for y in wanted if any(d.year == y for d in chinese_calendar.holidays))
    holidays = {d for d in holidays if d.weekday() < 5}  # a weekend holiday is off anyway
    if extra is not None:
        holidays = (holidays | {d for d in extra.holidays if d.year in wanted}) - set(extra.workdays)
        workdays = (workdays | {d for d in extra.workdays if d.year in wanted}) - set(extra.holidays)
    return WorkCalendar(holidays=sorted(holidays), workdays=sorted(workdays), years_known=known)


def add_working_days(start: datetime, days: int, utc_offset_hours: int,
                     calendar: WorkCalendar = WEEKDAYS_ONLY) -> datetime:
    """`start` (aware) plus `days` working days in local time: the same local time of day on the `days`-th working
    day after it; a start on a day off counts whole days from the next working day, so it ends at the end (24:00) of
    its `days`-th working day."""
    off = timedelta(hours=utc_offset_hours)
    local = start + off
    if calendar.is_working_day(local.date()):
        d, n = local.date(), 0
        while n < days:
            d += timedelta(days=1)
            n += calendar.is_working_day(d)
        return datetime.combine(d, local.timetz()) - off
    d, n = calendar.first_working_day(local.date()), 1
    while n < days:
        d += timedelta(days=1)
        n += calendar.is_working_day(d)
    return datetime.combine(d + timedelta(days=1), datetime.min.time(), local.tzinfo) - off
