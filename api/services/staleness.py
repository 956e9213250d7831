"""How old a warning is: its age since `sent`, whether it is old (sent longer ago than
settings.stale_warning_hours) or expired (`expires` passed). The intake records it with every
warning; an expired one is refused (REST) or recorded without a call-out (feeds) unless accepted,
and the console asks for a confirmation before it calls out an old or expired one."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


@dataclass(frozen=True)
class Freshness:
    sent: datetime | None
    expires: datetime | None
    age_s: int | None  # seconds since sent (None: no sent time; negative: sent in the future)
    old: bool
    expired: bool

    @property
    def stale(self) -> bool:
        return self.old or self.expired

    def payload(self) -> dict[str, Any]:
        """What the audit event and the warning's meta record of it."""
        return {"sent": self.sent.isoformat() if self.sent else None,
                "expires": self.expires.isoformat() if self.expires else None,
                "age_s": self.age_s, "old": self.old, "expired": self.expired}


def freshness(sent: datetime | None, expires: datetime | None, now: datetime, max_age_hours: float) -> Freshness:
    sent, expires, now = _utc(sent), _utc(expires), _utc(now) or datetime.now(UTC)
    age = int((now - sent).total_seconds()) if sent else None
    return Freshness(sent=sent, expires=expires, age_s=age, old=age is not None and age > max_age_hours * 3600,
                     expired=expires is not None and expires <= now)


def age_words(seconds: int | None, lang: str = "zh") -> str:
    """A duration in words, the largest two units: 5个月3天, 2小时15分钟; 'five months' style in English."""
    if seconds is None:
        return "发布时间不详" if lang != "en" else "sent time unknown"
    ahead, seconds = seconds < 0, abs(seconds)
    units = ((30 * 86400, "个月", "month"), (86400, "天", "day"), (3600, "小时", "hour"), (60, "分钟", "minute"))
    counts = []
    for size, zh, en in units:
        n, seconds = divmod(seconds, size)
        counts.append((n, zh, en))
    first = next((i for i, c in enumerate(counts) if c[0]), None)
    shown = [] if first is None else [c for c in counts[first:first + 2] if c[0]]
    parts = [f"{n}{zh}" if lang != "en" else f"{n} {en}{'s' if n > 1 else ''}" for n, zh, en in shown]
    text = ("" if lang != "en" else " ").join(parts) or ("不到1分钟" if lang != "en" else "less than a minute")
    if lang == "en":
        return f"in {text}" if ahead else f"{text} ago"
    return f"{text}后" if ahead else f"{text}前"


def local_time(value: datetime | None, tz: str) -> str:
    return value.astimezone(ZoneInfo(tz)).strftime("%Y-%m-%d %H:%M") if value else "—"


def expired_refusal(f: Freshness, tz: str) -> str:
    """Why an expired warning was refused, naming sent and expires (local time), Chinese first."""
    return (f"预警已失效:发布时间 {local_time(f.sent, tz)},失效时间 {local_time(f.expires, tz)}({tz}),"
            f"不发起叫应;如确需叫应,请求中加 accept_stale: true(CAP 文档:?accept_stale=true)/ "
            f"the warning has expired (sent {f.sent.isoformat() if f.sent else 'unknown'}, expires "
            f"{f.expires.isoformat() if f.expires else 'unknown'}); send accept_stale: true (CAP: ?accept_stale=true) "
            "to take it anyway")
