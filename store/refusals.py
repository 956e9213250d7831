"""Refused steps: recorded, counted per window, and kept out of the procedure's own audit chain.

A step a procedure refuses (wrong role, not theirs, out of order) is worth a supervisor's eye,
but one caller repeating it must not grow the procedure's chain, nor the sealed case file made
from it (300 refused sign-offs once grew a review's chain from 6 events to 307). So:

- `refusal` counts them per (subject, action, actor, status) and window (an hour): one row,
  `count` going up, the latest reason;
- the first refusal of each such window is also appended, tamper-evident, to the day's own
  audit subject ``refusals/<YYYY-MM-DD>`` (UTC), never to the procedure's subject.

Supervisors read them with `GET /api/refusals` (the counts) or `GET /api/audit/refusals/<date>`.
"""
from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import UniqueConstraint
from sqlalchemy.exc import IntegrityError
from sqlmodel import Field, Session, SQLModel, col, select

from store.audit import NewEvent, append
from store.types import utc_column

WINDOW = timedelta(hours=1)
SUBJECT_PREFIX = "refusals/"


class Refusal(SQLModel, table=True):
    __tablename__ = "refusal"
    __table_args__ = (UniqueConstraint("subject", "action", "actor", "status", "window_start",
                                       name="uq_refusal_window"),)
    id: int | None = Field(default=None, primary_key=True)
    subject: str = Field(index=True, description="the procedure's audit subject the refused step was about")
    kind: str = Field(description="e.g. activation.refused, review.refused, report.refused")
    action: str
    actor: str = Field(index=True)
    role: str = ""
    workflow_id: str | None = None
    window_start: datetime = Field(sa_column=utc_column(nullable=False, index=True))
    count: int = 1
    status: int
    reason: str = ""
    first_at: datetime = Field(sa_column=utc_column(nullable=False))
    last_at: datetime = Field(sa_column=utc_column(nullable=False))


def audit_subject(at: datetime) -> str:
    return f"{SUBJECT_PREFIX}{at.astimezone(UTC):%Y-%m-%d}"


def _window(at: datetime) -> datetime:
    at = at.astimezone(UTC)
    step = int(WINDOW.total_seconds())
    return datetime.fromtimestamp(int(at.timestamp()) // step * step, UTC)


def _bump(s: Session, key: dict[str, Any], reason: str, at: datetime) -> bool:
    row = s.exec(select(Refusal).where(*(getattr(Refusal, k) == v for k, v in key.items()))).first()
    if row is None:
        return False
    row.count, row.last_at, row.reason = row.count + 1, at, reason[:2000]
    s.add(row)
    return True


def record(s: Session, *, subject: str, kind: str, action: str, actor: str, role: str, workflow_id: str | None,
           status: int, reason: str, at: datetime | None = None) -> None:
    """Count one refused step; the first of its kind in a window also goes to the day's `refusals/<date>` chain."""
    at = at or datetime.now(UTC)
    key = {"subject": subject, "action": action, "actor": actor, "status": status, "window_start": _window(at)}
    if _bump(s, key, reason, at):
        return
    try:
        with s.begin_nested():
            s.add(Refusal(**key, kind=kind, role=role, workflow_id=workflow_id, reason=reason[:2000],
                          first_at=at, last_at=at))
            s.flush()
    except IntegrityError:  # the same window's first refusal, recorded meanwhile by another request
        _bump(s, key, reason, at)
        return
    append(s, [NewEvent(subject=audit_subject(at), kind=kind, actor=actor, at=at,
                        step_id=f"{subject}/{action}/{actor}/{status}/{key['window_start'].isoformat()}",
                        payload={"subject": subject, "workflow_id": workflow_id, "action": action, "role": role,
                                 "reason": reason, "status": status, "window_start": key["window_start"].isoformat(),
                                 "window_s": int(WINDOW.total_seconds())})])


def listing(s: Session, *, subject: str | None = None, actor: str | None = None, since: datetime | None = None,
            limit: int = 100, offset: int = 0) -> list[Refusal]:
    stmt = select(Refusal)
    if subject:
        stmt = stmt.where(Refusal.subject == subject)
    if actor:
        stmt = stmt.where(Refusal.actor == actor)
    if since:
        stmt = stmt.where(col(Refusal.last_at) >= since)
    return list(s.exec(stmt.order_by(col(Refusal.last_at).desc(), col(Refusal.id).desc()).offset(offset).limit(limit)))
