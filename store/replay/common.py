"""What every procedure's replay shares: the target states, an event as the replay reads it, small helpers."""
from __future__ import annotations

from datetime import datetime
from typing import Any, NamedTuple, Protocol

from workflows.kit.events import FAILED_STATUSES, Callout

STATES = ("pending", "notified", "acknowledged", "escalated", "unreachable", "canceled")
TERMINAL = frozenset({"acknowledged", "unreachable", "canceled"})
ANSWERED = frozenset({"notify", "escalate"})  # sends that ask for an answer
FAILED = FAILED_STATUSES  # a send's statuses that mean it reached nobody (defined once, with the event kinds)
NEUTRAL_KINDS = Callout.NEUTRAL


class EventLike(Protocol):
    """What the replay reads of an event (an `AuditEvent` or any row with these attributes)."""

    seq: int | None
    kind: str
    at: datetime
    actor: str
    channel: str | None
    step_id: str
    workflow_id: str | None
    payload: dict[str, Any]


class Row(NamedTuple):
    seq: int
    kind: str
    at: datetime
    actor: str
    channel: str | None
    step_id: str
    workflow_id: str | None
    payload: dict[str, Any]


def jsonable(state: dict[str, Any]) -> dict[str, Any]:
    """Datetimes as ISO strings (for JSON responses and templates)."""

    def conv(v: Any) -> Any:
        if isinstance(v, datetime):
            return v.isoformat()
        if isinstance(v, dict):
            return {k: conv(x) for k, x in v.items()}
        if isinstance(v, list):
            return [conv(x) for x in v]
        return v

    return conv(state)


def parse_time(value: Any) -> datetime | None:
    """A payload's time (ISO text or datetime), or None."""
    if isinstance(value, datetime):
        return value
    if isinstance(value, str) and value:
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
    return None


def zh_number(n: int) -> str:
    digits = "零一二三四五六七八九"
    if n < 10:
        return digits[n]
    tens, ones = divmod(n, 10)
    return (digits[tens] if tens > 1 else "") + "十" + (digits[ones] if ones else "")


def limit_state(due: datetime | None, met: datetime | None, at: datetime) -> str:
    if met is not None:
        return "late" if due is not None and met > due else "on_time"
    return "overdue" if due is not None and at >= due else "open"


def last_event(ev: EventLike | None) -> dict[str, Any] | None:
    return {"seq": ev.seq, "kind": ev.kind, "at": ev.at} if ev is not None else None


def require_zone(at: datetime) -> None:
    if at.tzinfo is None:
        raise ValueError("at: give a time zone")


def kind_of_subject(subject: str, events: list[EventLike]) -> str:
    """callout | reporting | activation | review, from the subject's name (workflows/subjects.py) and its first
    events."""
    from workflows.subjects import kind_of

    named = kind_of(subject)
    if named in ("callout", "activation", "review", "workorder"):
        return named
    kinds = {e.kind.split(".", 1)[0] for e in events[:50]}
    if "callout" in kinds:
        return "callout"
    if "incident" in kinds or "report" in kinds:
        return "reporting"
    if "activation" in kinds:
        return "activation"
    if "review" in kinds:
        return "review"
    return "callout"
