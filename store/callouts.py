"""Read model of call-outs: kept current by the workflows' activities, read by the API.

The workflows are the source of truth while they run and the audit chain is
the record that lasts; these rows let the console and `GET /api/callouts`
answer fast for 10,000 targets without querying every shard.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from store.types import empty_dict, empty_list, json_column, now_utc, utc_column


class Callout(SQLModel, table=True):
    __tablename__ = "callout"
    id: str = Field(primary_key=True, description="the workflow id")
    warning_id: str | None = Field(default=None, index=True)
    plan_id: str
    plan_version: str
    level: str
    category: str
    title: str = ""
    drill: bool = False
    status: str = Field(default="running", index=True, description="running | completed | canceled")
    started_at: datetime = Field(default_factory=now_utc, sa_column=utc_column(nullable=False))
    ended_at: datetime | None = Field(default=None, sa_column=utc_column())
    summary: dict[str, Any] | None = Field(default=None, sa_column=json_column())


class CalloutTarget(SQLModel, table=True):
    __tablename__ = "callout_target"
    __table_args__ = (UniqueConstraint("callout_id", "target_key", name="uq_callout_target"),
                      Index("ix_callout_target_changes", "callout_id", "updated_at"),  # a board's poll: what changed
                      Index("ix_callout_target_shard", "callout_id", "shard", "id"))  # a shard's load: its own targets
    id: int | None = Field(default=None, primary_key=True)
    callout_id: str = Field(foreign_key="callout.id", index=True)
    target_key: str = Field(description="tier/post: stable id of the target within the call-out")
    shard: int = 0
    tier: str
    position_code: str
    org_unit_id: str
    person_id: str = Field(index=True)
    name: str = ""
    state: str = Field(default="pending", index=True, description="pending | notified | acknowledged | escalated | unreachable | canceled")
    attempts: list[dict[str, Any]] = Field(default_factory=empty_list, sa_column=json_column(nullable=False))
    acknowledged_at: datetime | None = Field(default=None, sa_column=utc_column())
    ack_channel: str | None = None
    ack_by: str | None = None
    ack_late: bool = Field(default=False, description="answered only after the target was settled or the call-out ended")
    escalated_to: list[str] = Field(default_factory=empty_list, sa_column=json_column(nullable=False))
    spec: dict[str, Any] = Field(default_factory=empty_dict, sa_column=json_column(nullable=False),
                                 description="the resolved target: contacts of person, deputy, superior, others")
    updated_at: datetime = Field(default_factory=now_utc, sa_column=utc_column(nullable=False))


class CalloutAnswer(SQLModel, table=True):
    """An answer for a target that the API has received, stored and matched, before the target's workflow has
    recorded it (the target's acknowledged_at): the board shows the target answered at once (store/answers.py
    `mark_answered`). Inserted, never updated, and with no foreign key: storing it locks no target row, so it never
    waits for a shard's flush, which holds the rows it writes until its commit (issue 25: docs/performance.md, "Answers
    in rows of their own"). A target's answer is its earliest row here."""

    __tablename__ = "callout_answer"
    __table_args__ = (Index("ix_callout_answer_changes", "callout_id", "stored_at"),)  # a board's poll: what came
    id: int | None = Field(default=None, primary_key=True)
    callout_id: str = Field(description="the call-out (callout.id)")
    target_id: int = Field(index=True, description="the target answered for (callout_target.id)")
    person_id: str = Field(description="who answered: the target's person, or a deputy or superior called for it")
    received_at: datetime = Field(sa_column=utc_column(nullable=False))
    stored_at: datetime = Field(default_factory=now_utc, sa_column=utc_column(nullable=False), description=(
        "stamped just before the commit, for a live board's poll (as a target's updated_at)"))


class CalloutRelay(SQLModel, table=True):
    """到户到人: one village's relay in a call-out (workflows/relay.py), kept by the relay's flush
    (activities/relay.py). Overdue is read, not stored: requested or escalated, and past `due_at`."""

    __tablename__ = "callout_relay"
    __table_args__ = (UniqueConstraint("callout_id", "target_key", name="uq_callout_relay"),)
    id: int | None = Field(default=None, primary_key=True)
    callout_id: str = Field(foreign_key="callout.id", index=True)
    target_key: str = Field(description="the village target's key (callout_target.target_key)")
    org_unit_id: str = Field(default="", description="the village")
    person_id: str = Field(default="", description="the person asked (who acknowledged the call-out)")
    state: str = Field(default="requested", description="requested | escalated | confirmed | unreachable | canceled")
    requested_at: datetime | None = Field(default=None, sa_column=utc_column())
    due_at: datetime | None = Field(default=None, sa_column=utc_column())
    confirmed_at: datetime | None = Field(default=None, sa_column=utc_column())
    households: int | None = Field(default=None, description="households reached, as the first confirmation said")
    confirmed_by: str | None = Field(default=None, description="who answered (a grid worker, a duty officer, the "
                                                               "town head, or the person)")
    on_behalf: bool = Field(default=False, description="answered by someone else for the person")
    late: bool = Field(default=False, description="confirmed after the deadline")
    answers: int = Field(default=0, description="confirmations recorded (on time and late)")
    escalated_to: list[str] = Field(default_factory=empty_list, sa_column=json_column(nullable=False))
    updated_at: datetime = Field(default_factory=now_utc, sa_column=utc_column(nullable=False))


RELAY_OPEN = ("requested", "escalated")


def relay_overdue(r: CalloutRelay, now: datetime) -> bool:
    """Asked, not confirmed, and past its deadline (escalated or not)."""
    return r.state in (*RELAY_OPEN, "unreachable") and r.due_at is not None and r.due_at <= now


def relay_counts(rows: list[CalloutRelay], now: datetime) -> dict[str, int] | None:
    """A call-out's relays counted (None when it asked none): requested, confirmed (on time), late, households
    reached, open (not confirmed yet), overdue, escalated, on behalf."""
    if not rows:
        return None
    return {"requested": len(rows),
            "confirmed": sum(1 for r in rows if r.state == "confirmed" and not r.late),
            "late": sum(1 for r in rows if r.state == "confirmed" and r.late),
            "households": sum(r.households or 0 for r in rows),
            "open": sum(1 for r in rows if r.state != "confirmed"),
            "overdue": sum(1 for r in rows if relay_overdue(r, now)),
            "escalated": sum(1 for r in rows if r.escalated_to),
            "on_behalf": sum(1 for r in rows if r.on_behalf)}
