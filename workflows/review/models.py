"""The post-event review's messages: what it is started with, what people send, what it shows, what its
activities take (activities/review/), and its state."""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from definitions.schema.review import ReviewTemplate
from workflows import subjects
from workflows.common import Actor, Event, activity_options
from workflows.escalation import Record, Send, Target
from workflows.kit.episodes import Episode

ACTIVITY = activity_options(start_to_close=timedelta(minutes=10))  # a large case file takes a while
WORKFLOW_TYPE = "PostEventReviewWorkflow"
Status = Literal["collecting", "compiled", "returned", "signed", "sealed"]


def review_workflow_id(incident_id: str) -> str:
    return f"review-{incident_id}"


# the review's own audit subject, review/<incident id> (one builder per kind: workflows/subjects.py)
review_subject = subjects.review_subject


class ReviewInput(BaseModel):
    """What a terminated activation passes (a plain dict), or the API when started by hand."""

    model_config = ConfigDict(extra="ignore")

    incident_id: str = Field(min_length=1)
    activation_id: str | None = None
    started_by: str = "system"
    units: list[str] = Field(default_factory=list, description="participating org unit ids; empty: from the audit trail")
    related: list[str] = Field(default_factory=list, description="other audit subjects of the case (call-outs …)")
    template: str | None = Field(default=None, description="review template id; default: the default template")
    title: str | None = None

    @field_validator("activation_id")
    @classmethod
    def _activation_id(cls, v: str | None) -> str | None:
        """The activation's own id, also when given as its workflow id (``activation-<id>``, which is what a
        terminated activation passes) or its audit subject (``activation/<id>``)."""
        if v:
            for prefix in ("activation/", "activation-"):
                v = v.removeprefix(prefix)
        return v or None


class UnitRef(BaseModel):
    id: str
    name: str
    contact: str = ""
    answerers: list[str] = Field(default_factory=list, description="who answers for the unit: the person holding "
                                 "the template's contact post there, and that post's deputy")


class OpenRequest(BaseModel):
    input: ReviewInput
    workflow_id: str
    run_id: str
    at: datetime


class OpenResult(BaseModel):
    title: str
    template: ReviewTemplate
    template_version: str
    units: list[UnitRef]
    subjects: list[str] = Field(description="every audit subject of the case: incident, activation, call-outs, review")
    gaps: list[str] = Field(default_factory=list)


class SummaryContent(BaseModel):
    what_worked: str = Field(min_length=1, max_length=20000, description="经验做法")
    shortcomings: str = Field(min_length=1, max_length=20000, description="存在的不足")
    suggestions: str = Field(default="", max_length=20000, description="意见建议")
    author: str = Field(default="", max_length=200, description="who wrote it in the unit (署名)")


class UnitState(BaseModel):
    unit_id: str
    name: str
    contact: str = ""
    requested_at: datetime
    due_at: datetime
    reminders_sent: int = 0
    overdue_at: datetime | None = None
    submitted_at: datetime | None = None
    submitted_by: str | None = None
    late_by_s: int | None = None
    version: int = 0
    content: SummaryContent | None = None
    on_behalf: bool = Field(default=False, description="the latest version was entered by the duty office (代录)")


class ReportInfo(BaseModel):
    version: int
    final: bool = False
    compiled_at: datetime
    compiled_by: str
    sha256_json: str
    sha256_pdf: str | None = None
    pdf_bytes: int | None = None


class Signoff(BaseModel):
    decision: Literal["approve", "return"]
    by: str
    at: datetime
    version: int
    lessons: str = ""
    comments: str = ""


class ArchiveInfo(BaseModel):
    sha256: str
    bytes: int
    files: int
    manifest_sha256: str
    sealed_at: datetime


class ReviewState(BaseModel):
    started_at: datetime
    opened: OpenResult
    units: list[UnitState]
    status: Status = "collecting"
    reports: list[ReportInfo] = Field(default_factory=list)
    signoffs: list[Signoff] = Field(default_factory=list)
    episodes: list[Episode] = Field(default_factory=list, description="the overdue summaries escalated: kind overdue, ref the unit id")
    archive: ArchiveInfo | None = None
    dirty: bool = Field(default=True, description="something changed since the last compiled report")


class SummaryIn(Actor):
    unit_id: str = Field(min_length=1)
    summary: SummaryContent


class CompileIn(Actor):
    pass


class SignoffIn(Actor):
    decision: Literal["approve", "return"]
    version: int | None = Field(default=None, description="the report version signed; refused if a newer one exists")
    lessons: str = Field(default="", max_length=20000, description="经验教训 / 总体评价 (required to approve)")
    comments: str = Field(default="", max_length=20000, description="required to return")


class UnitView(BaseModel):
    unit_id: str
    name: str
    contact: str
    requested_at: datetime
    due_at: datetime
    state: Literal["requested", "overdue", "submitted", "late"]
    submitted_at: datetime | None
    submitted_by: str | None
    late_by_s: int | None
    version: int
    summary: SummaryContent | None
    escalation: str | None = None
    on_behalf: bool = False


class ReviewView(BaseModel):
    incident_id: str
    activation_id: str | None
    workflow_id: str
    subject: str
    title: str
    status: Status
    started_at: datetime
    started_by: str
    template: str
    template_version: str
    subjects: list[str]
    units: list[UnitView]
    reports: list[ReportInfo]
    signoffs: list[Signoff]
    archive: ArchiveInfo | None
    gaps: list[str]


class RecordRequest(BaseModel):
    workflow_id: str
    run_id: str
    events: list[Event]
    view: ReviewView


class NotifyRequest(BaseModel):
    record: RecordRequest
    template: ReviewTemplate
    purpose: Literal["request", "reminder"]
    unit_ids: list[str]
    round: int = 0


class TargetsRequest(BaseModel):
    unit_id: str
    unit_name: str
    template: ReviewTemplate


class TargetsResult(BaseModel):
    targets: list[Target]
    gaps: list[str] = Field(default_factory=list)


class FlushRequest(BaseModel):
    record: RecordRequest
    episode: str
    unit_id: str
    text_zh: str = Field(description="the template's overdue text; {title} {unit} {due} filled in by the activity")
    sends: list[Send]
    records: list[Record]


class CompileRequest(BaseModel):
    record: RecordRequest
    version: int
    final: bool
    by: str
    signoff: Signoff | None = None


class SealRequest(BaseModel):
    record: RecordRequest
    by: str


def late_text(seconds: int) -> str:
    """迟交 N天N小时 / N小时N分钟 / N分钟 (rounded up to the minute)."""
    minutes = -(-seconds // 60)
    days, rest = divmod(minutes, 1440)
    hours, mins = divmod(rest, 60)
    if days:
        return f"{days}天{hours}小时" if hours else f"{days}天"
    if hours:
        return f"{hours}小时{mins}分钟" if mins else f"{hours}小时"
    return f"{mins}分钟"

