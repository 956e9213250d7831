"""The post-event review's read model: `PostEventReviewWorkflow` is the source of truth while it runs; these
rows let the API answer without asking Temporal, also after the review has closed:

- `Review`: one per incident: who started it, its template, status, the sealed archive's hash.
- `ReviewUnit`: each participating unit's written summary: asked, due, submitted, late by how much.
- `ReviewReport`: every compiled version of the event report (JSON, HTML, PDF); the last is signed.
- `CaseFile`: the sealed archive 一事一档 (zip bytes and its hash).
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Column, LargeBinary, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from store.types import json_column, now_utc, utc_column


class Review(SQLModel, table=True):
    __tablename__ = "review"
    incident_id: str = Field(primary_key=True)
    workflow_id: str = Field(index=True)
    subject: str = Field(description="the review's audit subject: review/<incident_id>")
    activation_id: str | None = Field(default=None, index=True)
    title: str = ""
    status: str = Field(default="collecting", index=True,
                        description="collecting | compiled | returned | signed | sealed")
    started_by: str = "system"
    started_at: datetime = Field(sa_column=utc_column(nullable=False, index=True))
    template_id: str = ""
    template_version: str = ""
    subjects: list[str] = Field(default_factory=list, sa_column=json_column(nullable=False))
    gaps: list[str] = Field(default_factory=list, sa_column=json_column(nullable=False))
    report_version: int = 0
    signed_by: str | None = None
    signed_at: datetime | None = Field(default=None, sa_column=utc_column())
    archive_sha256: str | None = None
    sealed_at: datetime | None = Field(default=None, sa_column=utc_column())
    updated_at: datetime = Field(default_factory=now_utc, sa_column=utc_column(nullable=False))


class ReviewUnit(SQLModel, table=True):
    __tablename__ = "review_unit"
    __table_args__ = (UniqueConstraint("incident_id", "unit_id", name="uq_review_unit"),)
    id: int | None = Field(default=None, primary_key=True)
    incident_id: str = Field(foreign_key="review.incident_id", index=True)
    unit_id: str
    name: str = ""
    contact: str = ""
    state: str = Field(default="requested", description="requested | overdue | submitted | late")
    requested_at: datetime = Field(sa_column=utc_column(nullable=False))
    due_at: datetime = Field(sa_column=utc_column(nullable=False))
    submitted_at: datetime | None = Field(default=None, sa_column=utc_column())
    submitted_by: str | None = None
    late_by_s: int | None = None
    version: int = 0
    summary: dict[str, Any] | None = Field(default=None, sa_column=json_column(),
                                           description="what worked, shortcomings, suggestions, author")
    escalation: str | None = None


class ReviewReport(SQLModel, table=True):
    __tablename__ = "review_report"
    __table_args__ = (UniqueConstraint("incident_id", "version", name="uq_review_report"),)
    id: int | None = Field(default=None, primary_key=True)
    incident_id: str = Field(foreign_key="review.incident_id", index=True)
    version: int
    final: bool = False
    compiled_at: datetime = Field(sa_column=utc_column(nullable=False))
    compiled_by: str = "system"
    data: dict[str, Any] = Field(default_factory=dict, sa_column=json_column(nullable=False))
    json_text: str = Field(sa_column=Column(Text, nullable=False))
    html: str = Field(sa_column=Column(Text, nullable=False))
    pdf: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
    sha256_json: str
    sha256_pdf: str | None = None


class CaseFile(SQLModel, table=True):
    __tablename__ = "case_file"
    incident_id: str = Field(primary_key=True, foreign_key="review.incident_id")
    filename: str
    sha256: str = Field(index=True)
    size: int
    manifest_sha256: str
    manifest: dict[str, Any] = Field(default_factory=dict, sa_column=json_column(nullable=False))
    data: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    sealed_at: datetime = Field(sa_column=utc_column(nullable=False))
    sealed_by: str = "system"
