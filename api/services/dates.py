"""Date filters of the lists (incidents, activations, reviews, call-outs, the message log): a from/to pair of
local dates (the duty office's calendar, settings.timezone) turned into a UTC range [start, end), the end
being the midnight after the `to` day. The console and the REST routes pass the same strings."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from api.services.errors import ServiceError
from config import get_settings


class DateFilterError(ServiceError):
    """A date filter that is not a date, or ends before it starts."""


@dataclass(frozen=True)
class DateRange:
    start: datetime | None = None  # UTC, inclusive
    end: datetime | None = None  # UTC, exclusive

    def where(self, stmt: Any, column: Any) -> Any:
        """The statement restricted to rows whose `column` falls in the range."""
        if self.start is not None:
            stmt = stmt.where(column >= self.start)
        if self.end is not None:
            stmt = stmt.where(column < self.end)
        return stmt

    def holds(self, at: datetime | None) -> bool:
        if at is None:
            return self.start is None and self.end is None
        return (self.start is None or at >= self.start) and (self.end is None or at < self.end)

    @property
    def empty(self) -> bool:
        return self.start is None and self.end is None


def _day(name: str, value: str | date | None) -> date | None:
    if value is None or value == "":
        return None
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value).strip()[:10])
    except ValueError:
        raise DateFilterError(422, f"{name}: 日期格式应为 YYYY-MM-DD(收到 {str(value)[:20]!r})"
                                   f" / a date YYYY-MM-DD") from None


def local_range(date_from: str | date | None = None, date_to: str | date | None = None,
                tz: str | None = None) -> DateRange:
    """The UTC range of the local days from `date_from` to `date_to` (both included; either may be empty).
    Raises DateFilterError 422 for a malformed date or a `to` before the `from`."""
    zone = ZoneInfo(tz or get_settings().timezone)
    first, last = _day("date_from", date_from), _day("date_to", date_to)
    if first and last and last < first:
        raise DateFilterError(422, "结束日期早于开始日期 / date_to is before date_from")
    try:
        start = datetime.combine(first, time(), zone).astimezone(UTC) if first else None
        end = datetime.combine(last + timedelta(days=1), time(), zone).astimezone(UTC) if last else None
    except OverflowError:  # 0001-01-01 east of UTC, 9999-12-31: beyond what a datetime holds
        raise DateFilterError(422, "日期超出范围 / a date out of range") from None
    return DateRange(start, end)


def local_today(tz: str | None = None) -> date:
    return datetime.now(ZoneInfo(tz or get_settings().timezone)).date()
