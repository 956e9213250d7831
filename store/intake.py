"""The answer intake: every answer that arrives over HTTP in volume (an SMS reply from a gateway, a signed
link's confirmation) is written here first, in one commit for all that arrive together, before anything else
is done with it; then it is matched and given to the workflows waiting for it, and marked done.

So an answer is on record from the moment its request is answered, whatever happens next: a burst past what
the API can process in time, Temporal down, the API process killed. An item not done is taken up again by
any API process once its claim is stale (`claim_stale`), and processed again from the start: everything it
does is idempotent (the SMS by its provider id, the answer by its ref, the link by its id).
"""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Index, delete, update
from sqlmodel import Field, Session, SQLModel, col, select

from store.bulk import insert_returning, update_rows
from store.types import empty_dict, json_column, now_utc, utc_column

KINDS = ("sms", "link")


class AnswerIntake(SQLModel, table=True):
    __tablename__ = "answer_intake"
    __table_args__ = (Index("ix_answer_intake_open", "done_at", "claimed_at"),)
    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(description="sms | link")
    payload: dict[str, Any] = Field(default_factory=empty_dict, sa_column=json_column(nullable=False))
    received_at: datetime = Field(sa_column=utc_column(nullable=False))
    claimed_by: str | None = None
    claimed_at: datetime | None = Field(default=None, sa_column=utc_column())
    attempts: int = 0
    done_at: datetime | None = Field(default=None, sa_column=utc_column())
    outcome: dict[str, Any] = Field(default_factory=empty_dict, sa_column=json_column(nullable=False))


def store(s: Session, items: list[tuple[str, dict[str, Any], datetime]], owner: str) -> list[int]:
    """Write answers (kind, payload, received at), claimed by `owner` (the process that will process them now);
    their ids in order."""
    now = now_utc()
    table = AnswerIntake.__table__
    rows = [{"kind": k, "payload": p, "received_at": at, "claimed_by": owner, "claimed_at": now, "attempts": 1,
             "outcome": {}} for k, p, at in items]
    return insert_returning(s, table, rows, table.c.id)


def finish(s: Session, outcomes: dict[int, dict[str, Any]]) -> None:
    """Mark items done with what became of them."""
    if not outcomes:
        return
    now = now_utc()
    table = AnswerIntake.__table__
    update_rows(s, table, table.c.id, [{"id": i, "done_at": now, "outcome": o} for i, o in outcomes.items()])


def renew(s: Session, owner: str, ids: list[int]) -> None:
    """Keep `owner`'s claims on these items fresh (they wait in its queue): no other process takes them up."""
    now = now_utc()
    for i in range(0, len(ids), 500):
        s.exec(update(AnswerIntake).where(col(AnswerIntake.id).in_(ids[i:i + 500]),
                                          AnswerIntake.claimed_by == owner).values(claimed_at=now))


def claim_stale(s: Session, owner: str, stale_after: timedelta, limit: int = 500) -> list[AnswerIntake]:
    """Take up to `limit` items not done whose claim is older than `stale_after`: the process that stored them
    died or is stuck, or their processing failed (Temporal or the database down; tried again at this pace)."""
    now = now_utc()
    stmt = (select(AnswerIntake).where(col(AnswerIntake.done_at).is_(None),
                                       col(AnswerIntake.claimed_at) < now - stale_after)
            .order_by(col(AnswerIntake.id)).limit(limit))
    if s.get_bind().dialect.name != "sqlite":  # several API processes: each takes its own
        stmt = stmt.with_for_update(skip_locked=True)
    rows = list(s.exec(stmt))
    for row in rows:
        row.claimed_by, row.claimed_at, row.attempts = owner, now, row.attempts + 1
        s.add(row)
    s.flush()
    return rows


def purge_done(s: Session, older_than: timedelta) -> int:
    """Forget items done long ago: the queue's work is over (an SMS reply stays in the inbox, every answer in
    the audit trail)."""
    return s.exec(delete(AnswerIntake).where(col(AnswerIntake.done_at) < now_utc() - older_than)).rowcount
