"""Read model of call-outs: kept current by the workflows' activities, read by the API.

The workflows are the source of truth while they run and the audit chain is
the record that lasts; these rows let the console and `GET /api/callouts`
answer fast for 10,000 targets without querying every shard.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import UniqueConstraint
from sqlmodel import Field, SQLModel

from store.types import json_column, now_utc, utc_column


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
    __table_args__ = (UniqueConstraint("callout_id", "target_key", name="uq_callout_target"),)
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
    attempts: list[dict[str, Any]] = Field(default_factory=list, sa_column=json_column(nullable=False))
    acknowledged_at: datetime | None = Field(default=None, sa_column=utc_column())
    ack_channel: str | None = None
    ack_by: str | None = None
    ack_late: bool = Field(default=False, description="answered only after the target was settled or the call-out ended")
    escalated_to: list[str] = Field(default_factory=list, sa_column=json_column(nullable=False))
    spec: dict[str, Any] = Field(default_factory=dict, sa_column=json_column(nullable=False),
                                 description="the resolved target: contacts of person, deputy, superior, others")
    updated_at: datetime = Field(default_factory=now_utc, sa_column=utc_column(nullable=False))
