"""Incidents and their reporting chain 信息报送: the read model kept by the reporting workflow's activities.

`IncidentReportingWorkflow` is the source of truth while it runs and the audit
chain is the record that lasts; these rows let `GET /api/incidents` answer
without asking Temporal, also after the chain has closed.

- `Incident`: what was received (接报), its grade, rules and status.
- `IncidentDeadline`: each time limit (verbal, written, 续报N) with when it was met and how late, or how it was
  closed unmet when the chain ended (`settled`: omitted 漏报 | lapsed 未报(已终止)).
- `IncidentReport`: each written report of the chain (书面报告, 续报一…, 终报) and its state.
- `ReportVersion`: every draft of a report with the leading leader's decision on it.
- `ReportReceipt`: each recipient of a submitted report: sent, delivered, confirmed (回执).

`unit_report_statistics` counts, per reporting unit, its reports to the duty office on time and late (迟报).
"""
from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field as dc_field
from datetime import datetime
from typing import Any

from sqlalchemy import UniqueConstraint
from sqlmodel import Field, Session, SQLModel, col, select

from store.types import json_column, now_utc, utc_column


class Incident(SQLModel, table=True):
    __tablename__ = "incident"
    id: str = Field(primary_key=True)
    workflow_id: str = Field(index=True)
    title: str = ""
    received_at: datetime = Field(sa_column=utc_column(nullable=False, index=True))
    source: str
    category: str = Field(index=True)
    subtype: str = ""
    severity: str = Field(default="IV", description="I 特别重大 … IV 一般")
    town_id: str | None = Field(default=None, index=True)
    place: str = ""
    summary: str = ""
    deaths: int = 0
    injured: int = 0
    missing: int = 0
    trapped: int = 0
    figures: dict[str, Any] | None = Field(default=None, sa_column=json_column(),
                                           description="灾情统计: the totals of the last approved report (or the intake)")
    reporting_unit: str = ""
    reporting_unit_id: str | None = None
    reporter: str = ""
    reporter_phone: str | None = None
    occurred_at: datetime | None = Field(default=None, sa_column=utc_column(), description="事发时间")
    known_at: datetime | None = Field(default=None, sa_column=utc_column(), description="知悉时间 of the reporting unit")
    reported_at: datetime | None = Field(default=None, sa_column=utc_column(),
                                         description="the reporting unit's report to the duty office")
    unit_due_at: datetime | None = Field(default=None, sa_column=utc_column(),
                                         description="known_at + the rules' unit_report_within; None: not measured")
    unit_late_by_s: int | None = Field(default=None, description="the unit's 迟报 in seconds; 0 on time; None: not measured")
    rules_id: str
    rules_version: str
    status: str = Field(default="open", index=True, description="open | closed")
    verbal: dict[str, Any] | None = Field(default=None, sa_column=json_column(),
                                          description="the verbal report: to whom, by whom, when, how")
    triggers: list[dict[str, Any]] = Field(default_factory=list, sa_column=json_column(nullable=False))
    vertical: dict[str, Any] | None = Field(default=None, sa_column=json_column(),
                                            description="拉条: the department's report to its city department, the gap")
    created_by: str = "system"
    created_at: datetime = Field(default_factory=now_utc, sa_column=utc_column(nullable=False))
    updated_at: datetime = Field(default_factory=now_utc, sa_column=utc_column(nullable=False))
    closed_at: datetime | None = Field(default=None, sa_column=utc_column())


class IncidentDeadline(SQLModel, table=True):
    __tablename__ = "incident_deadline"
    __table_args__ = (UniqueConstraint("incident_id", "key", name="uq_incident_deadline"),)
    id: int | None = Field(default=None, primary_key=True)
    incident_id: str = Field(foreign_key="incident.id", index=True)
    key: str = Field(description="verbal | written | followup_1 …")
    label: str
    due_at: datetime = Field(sa_column=utc_column(nullable=False, index=True))
    met_at: datetime | None = Field(default=None, sa_column=utc_column())
    met_by: str | None = Field(default=None, description="what met it: verbal | report 0 | report 2 (终报) …")
    late_by_s: int | None = Field(default=None, description="seconds late; 0 on time; None while open")
    reminded_at: datetime | None = Field(default=None, sa_column=utc_column())
    overdue_at: datetime | None = Field(default=None, sa_column=utc_column())
    settled: str | None = Field(default=None, description="unmet when the chain ended: omitted 漏报 | lapsed 未报(已终止)")


def deadline_is_open(d: IncidentDeadline) -> bool:
    """A time limit still to be met: not met, and not closed with its chain (漏报, 未报(已终止))."""
    return d.met_at is None and d.settled is None


def open_deadlines() -> Any:
    """The same, as a query condition on IncidentDeadline (the desk, the handover note)."""
    return col(IncidentDeadline.met_at).is_(None) & col(IncidentDeadline.settled).is_(None)


class IncidentReport(SQLModel, table=True):
    __tablename__ = "incident_report"
    __table_args__ = (UniqueConstraint("incident_id", "seq", name="uq_incident_report"),)
    id: int | None = Field(default=None, primary_key=True)
    incident_id: str = Field(foreign_key="incident.id", index=True)
    seq: int = Field(description="0 the first written report, then 续报 1, 2 …; the last may be the final")
    kind: str = Field(description="written | followup | final")
    label: str = Field(description="书面报告 | 续报一 … | 终报")
    deadline_key: str
    state: str = Field(default="in_review", description="in_review | returned | approved | submitted")
    version: int = 0
    approved_by: str | None = None
    approved_at: datetime | None = Field(default=None, sa_column=utc_column())
    submitted_by: str | None = None
    submitted_at: datetime | None = Field(default=None, sa_column=utc_column())


class ReportVersion(SQLModel, table=True):
    __tablename__ = "report_version"
    __table_args__ = (UniqueConstraint("incident_id", "seq", "version", name="uq_report_version"),)
    id: int | None = Field(default=None, primary_key=True)
    incident_id: str = Field(foreign_key="incident.id", index=True)
    seq: int
    version: int
    content: dict[str, Any] = Field(default_factory=dict, sa_column=json_column(nullable=False),
                                    description="time, place, what happened, casualties, measures, trend, next steps, cause")
    drafted_by: str
    drafted_at: datetime = Field(sa_column=utc_column(nullable=False))
    decision: str | None = Field(default=None, description="approve | return")
    reviewed_by: str | None = None
    reviewed_at: datetime | None = Field(default=None, sa_column=utc_column())
    comments: str | None = None


class ReportReceipt(SQLModel, table=True):
    __tablename__ = "report_receipt"
    __table_args__ = (UniqueConstraint("incident_id", "seq", "recipient_id", name="uq_report_receipt"),)
    id: int | None = Field(default=None, primary_key=True)
    incident_id: str = Field(foreign_key="incident.id", index=True)
    seq: int
    recipient_id: str = Field(description="the recipient's person id (rcpt:<id> for a named office)")
    name: str = ""
    status: str = Field(default="pending", description="pending | sent | delivered | failed | confirmed | unconfirmed")
    attempts: list[dict[str, Any]] = Field(default_factory=list, sa_column=json_column(nullable=False))
    sent_at: datetime | None = Field(default=None, sa_column=utc_column())
    confirmed_at: datetime | None = Field(default=None, sa_column=utc_column())
    confirmed_via: str | None = None
    updated_at: datetime = Field(default_factory=now_utc, sa_column=utc_column(nullable=False))


@dataclass
class UnitReportStats:
    """One reporting unit's reports to the duty office (from 知悉 to its report, against the rules' limit)."""

    unit_id: str | None
    unit: str
    reported: int = 0
    on_time: int = 0
    late: int = 0
    late_by_s: dict[str, int] = dc_field(default_factory=dict)  # incident id -> seconds late


def unit_report_statistics(s: Session, since: datetime | None = None, until: datetime | None = None,
                           unit_ids: list[str] | None = None) -> dict[str, UnitReportStats]:
    """Per reporting unit (its directory id, else its name), of the incidents received in [since, until) whose
    report time was measured (known_at given, the rules having a limit): how many on time, how many late (迟报)."""
    stmt = select(Incident).where(col(Incident.unit_late_by_s).is_not(None))
    if since is not None:
        stmt = stmt.where(col(Incident.received_at) >= since)
    if until is not None:
        stmt = stmt.where(col(Incident.received_at) < until)
    if unit_ids:
        stmt = stmt.where(col(Incident.reporting_unit_id).in_(unit_ids))
    out: dict[str, UnitReportStats] = {}
    for i in s.exec(stmt.order_by(Incident.received_at)):
        key = i.reporting_unit_id or i.reporting_unit
        st = out.setdefault(key, UnitReportStats(unit_id=i.reporting_unit_id, unit=i.reporting_unit))
        st.reported += 1
        if i.unit_late_by_s:
            st.late += 1
            st.late_by_s[i.id] = i.unit_late_by_s
        else:
            st.on_time += 1
    return out
