"""Hotline work orders 工单: the read model kept by the work order workflow's activities, the webhook's replay
guard, and the statistics per unit the scorecards read.

`WorkOrderWorkflow` is the source of truth while it runs and the audit chain is the record that lasts; these rows
let `GET /api/workorders` and the console answer without asking Temporal, also after the order has ended.

- `WorkOrder`: what the hotline passed on (the caller's number whole: only the duty office's views show it), its
  status, unit, result, 回访 and the incident it became.
- `WorkOrderAssignment`: each assignment of the order to a unit (分拨, 改派) with its limits met, late or overdue,
  whether it was returned and why, and how often its completion was sent back.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import UniqueConstraint
from sqlmodel import Field, Session, SQLModel, col, select

from store.types import json_column, now_utc, utc_column


class WorkOrder(SQLModel, table=True):
    __tablename__ = "work_order"
    id: str = Field(primary_key=True, description="workorder-<source>-<ticket>, also its workflow id and subject")
    source: str = Field(index=True)
    ticket: str
    category: str = Field(index=True)
    urgency: str = "normal"
    place: str = ""
    town_id: str | None = Field(default=None, index=True)
    words: str = ""
    caller_phone: str | None = None
    received_at: datetime = Field(sa_column=utc_column(nullable=False, index=True))
    status: str = Field(default="received", index=True)
    proposed_unit: str | None = None
    unit_id: str | None = Field(default=None, index=True)
    unit_name: str = ""
    sign_due: datetime | None = Field(default=None, sa_column=utc_column())
    feedback_due: datetime | None = Field(default=None, sa_column=utc_column())
    complete_due: datetime | None = Field(default=None, sa_column=utc_column())
    result: str | None = None
    feedback: list[dict[str, Any]] = Field(default_factory=list, sa_column=json_column(nullable=False))
    visits: list[dict[str, Any]] = Field(default_factory=list, sa_column=json_column(nullable=False))
    satisfaction: str | None = None
    incident_id: str | None = Field(default=None, index=True)
    fire_copied: bool = False
    rules_id: str = ""
    rules_version: str = ""
    created_by: str = "system"
    completed_at: datetime | None = Field(default=None, sa_column=utc_column())
    closed_at: datetime | None = Field(default=None, sa_column=utc_column())
    ended_at: datetime | None = Field(default=None, sa_column=utc_column())
    updated_at: datetime = Field(default_factory=now_utc, sa_column=utc_column(nullable=False))


class WorkOrderAssignment(SQLModel, table=True):
    __tablename__ = "work_order_assignment"
    __table_args__ = (UniqueConstraint("work_order_id", "seq", name="uq_work_order_assignment"),)
    id: int | None = Field(default=None, primary_key=True)
    work_order_id: str = Field(foreign_key="work_order.id", index=True)
    seq: int
    unit_id: str = Field(index=True)
    unit_name: str = ""
    assigned_at: datetime = Field(sa_column=utc_column(nullable=False, index=True))
    assigned_by: str = ""
    answerers: list[str] = Field(default_factory=list, sa_column=json_column(nullable=False),
                                 description="the unit's persons who answer for it (person ids)")
    deadlines: list[dict[str, Any]] = Field(default_factory=list, sa_column=json_column(nullable=False),
                                            description="sign, feedback, complete: due, met, late_by_s, overdue")
    signed_at: datetime | None = Field(default=None, sa_column=utc_column())
    signed_by: str | None = None
    signed_via: str | None = None
    sign_late_s: int | None = None
    feedback_late_s: int | None = None
    complete_late_s: int | None = None
    completed_at: datetime | None = Field(default=None, sa_column=utc_column())
    returned_at: datetime | None = Field(default=None, sa_column=utc_column())
    return_reason: str | None = None
    sent_back: int = 0
    closed: bool = False


# ------------------------------------------------------------------ statistics per unit (the scorecards)


@dataclass
class UnitStats:
    unit_id: str
    unit_name: str = ""
    assigned: int = 0
    signed: int = 0
    signed_on_time: int = 0
    signed_late: int = 0
    never_signed: int = 0  # past the signing limit, neither signed nor returned
    returned: int = 0
    feedback_late: int = 0
    completed: int = 0
    closed: int = 0
    closed_on_time: int = 0
    closed_late: int = 0
    sent_back: int = 0
    late_marks: list[str] = field(default_factory=list)


def unit_statistics(s: Session, since: datetime | None = None, until: datetime | None = None,
                    unit_ids: list[str] | None = None) -> dict[str, UnitStats]:
    """Per unit, of the assignments made in [since, until): how many were signed (on time, late), never signed,
    returned (退回), completed, closed by the duty office with the completion on time or late, and sent back.
    An assignment still open counts as assigned only, until it is signed, returned or closed."""
    stmt = select(WorkOrderAssignment)
    if since is not None:
        stmt = stmt.where(col(WorkOrderAssignment.assigned_at) >= since)
    if until is not None:
        stmt = stmt.where(col(WorkOrderAssignment.assigned_at) < until)
    if unit_ids:
        stmt = stmt.where(col(WorkOrderAssignment.unit_id).in_(unit_ids))
    out: dict[str, UnitStats] = {}
    for a in s.exec(stmt.order_by(WorkOrderAssignment.id)):
        st = out.setdefault(a.unit_id, UnitStats(unit_id=a.unit_id, unit_name=a.unit_name))
        st.assigned += 1
        if a.signed_at is not None:
            st.signed += 1
            if a.sign_late_s:
                st.signed_late += 1
                st.late_marks.append(f"{a.work_order_id}/sign")
            else:
                st.signed_on_time += 1
        elif a.returned_at is None and any(d.get("overdue_at") for d in a.deadlines if d.get("key") == "sign"):
            st.never_signed += 1
        if a.returned_at is not None:
            st.returned += 1
        if a.feedback_late_s:
            st.feedback_late += 1
        if a.completed_at is not None:
            st.completed += 1
        if a.closed:
            st.closed += 1
            if a.complete_late_s:
                st.closed_late += 1
                st.late_marks.append(f"{a.work_order_id}/complete")
            else:
                st.closed_on_time += 1
        st.sent_back += a.sent_back
    return out
