"""The work order's messages: what it is started with, what people send it, what it shows and what its activities
take (workflows/workorder/workflow.py runs it)."""
from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field
from temporalio import workflow

from workflows.common import Actor, Event

with workflow.unsafe.imports_passed_through():
    from definitions.schema.calendar import WorkCalendar
    from definitions.schema.workorders import WorkOrderRules
    from workflows.callout import ShardEvents
    from workflows.escalation import Record, Send, Target
    from workflows.kit.episodes import Episode

WORKFLOW_TYPE = "WorkOrderWorkflow"
Source = Literal["12345", "110", "119", "120", "12122"]
Urgency = Literal["normal", "urgent"]
Status = Literal["received", "assigned", "signed", "returned", "completed", "sent_back", "closed", "visited"]
STATUS_ZH = {"received": "待分拨", "assigned": "待签收", "signed": "办理中", "returned": "已退回待改派",
             "completed": "已办结待审核", "sent_back": "退回重办", "closed": "已审核办结待回访", "visited": "已回访"}
STEP_ZH = {"sign": "签收", "feedback": "反馈", "complete": "办结"}
SATISFACTION = ("满意", "基本满意", "不满意", "未回访")


def workorder_workflow_id(source: str, ticket: str) -> str:
    """One work order per hotline ticket: the workflow id is its audit subject too."""
    return f"workorder-{source}-{ticket}"


class WorkOrderInfo(BaseModel):
    id: str = Field(description="workorder-<source>-<ticket>")
    source: Source
    ticket: str
    category: str
    urgency: Urgency = "normal"
    place: str
    town_id: str | None = None
    town_name: str = ""
    words: str = Field(description="the caller's words 来电内容")
    caller_phone: str | None = Field(default=None, description="the whole number: only the duty office sees it")
    received_at: datetime | None = None
    proposed_unit: str | None = Field(default=None, description="the unit the definitions propose")
    proposed_unit_name: str = ""
    created_by: str = "system"


class Deadline(BaseModel):
    key: Literal["sign", "feedback", "complete"]
    label: str
    due_at: datetime
    overdue_at: datetime | None = None
    met_at: datetime | None = None
    late_by_s: int | None = None


class Feedback(BaseModel):
    at: datetime
    by: str
    kind: Literal["progress", "result"]
    text: str
    on_behalf: bool = False
    late: bool = False


class Assignment(BaseModel):
    seq: int
    unit_id: str
    unit_name: str
    contact: str = Field(default="", description="the unit's responsible person's name")
    answerers: list[str] = Field(default_factory=list, description="who answers for the unit (person ids)")
    assigned_at: datetime
    assigned_by: str
    note: str = ""
    deadlines: list[Deadline] = Field(default_factory=list)
    signed_at: datetime | None = None
    signed_by: str | None = None
    signed_via: str | None = None
    returned_at: datetime | None = None
    returned_by: str | None = None
    return_reason: str | None = None
    sent_back: int = 0

    def deadline(self, key: str) -> Deadline:
        return next(d for d in self.deadlines if d.key == key)


class Visit(BaseModel):
    """回访: the result posted to the hotline platform, and the caller's satisfaction it answers."""

    version: int
    result: str
    posted_at: datetime | None = None
    receipt: str | None = None
    satisfaction: str | None = None
    comment: str = ""
    answered_at: datetime | None = None


class WorkOrderState(BaseModel):
    received_at: datetime
    status: Status = "received"
    assignments: list[Assignment] = Field(default_factory=list)
    feedback: list[Feedback] = Field(default_factory=list)
    result: str | None = None
    completed_at: datetime | None = None
    closed_at: datetime | None = None
    closed_by: str | None = None
    sent_back_reasons: list[str] = Field(default_factory=list)
    visits: list[Visit] = Field(default_factory=list)
    incident_id: str | None = None
    fire_copied: bool = False
    ended_at: datetime | None = None
    episodes: list[Episode] = Field(default_factory=list)
    pending: ShardEvents = Field(default_factory=ShardEvents)
    runs: int = 1

    @property
    def current(self) -> Assignment | None:
        return self.assignments[-1] if self.assignments else None


class WorkOrderInput(BaseModel):
    info: WorkOrderInfo
    rules: WorkOrderRules
    rules_version: str
    calendar: WorkCalendar | None = Field(default=None, description="working days of this year and the next (None: "
                                                                     "Monday to Friday, as orders started before)")
    max_history: int = Field(default=8000, description="continue as new past this many history events")
    state: WorkOrderState | None = None


# ----------------------------------------------------------------- what people send


class AssignIn(Actor):
    unit_id: str = Field(min_length=1, max_length=50)
    unit_name: str = ""
    note: str = Field(default="", max_length=2000)


class SignIn(Actor):
    channel: str = Field(default="console", max_length=20)


class ReturnIn(Actor):
    reason: str = Field(min_length=1, max_length=2000, description="why the order is not this unit's")


class FeedbackIn(Actor):
    text: str = Field(min_length=1, max_length=10000)


class CompleteIn(Actor):
    result: str = Field(min_length=1, max_length=10000, description="办理结果")


class CloseIn(Actor):
    decision: Literal["close", "send_back"]
    reason: str = Field(default="", max_length=2000, description="required when sending back")


class SatisfactionIn(Actor):
    satisfaction: Literal["满意", "基本满意", "不满意"]
    comment: str = Field(default="", max_length=2000)
    version: int | None = None


class IncidentLinkIn(Actor):
    incident_id: str = Field(min_length=1, max_length=64)


# ----------------------------------------------------------------- what it shows


class WorkOrderView(BaseModel):
    id: str
    workflow_id: str
    info: WorkOrderInfo
    status: Status
    status_zh: str
    received_at: datetime
    assignments: list[Assignment]
    feedback: list[Feedback]
    result: str | None
    completed_at: datetime | None
    closed_at: datetime | None
    closed_by: str | None
    sent_back_reasons: list[str]
    visits: list[Visit]
    incident_id: str | None
    fire_copied: bool
    ended_at: datetime | None
    sign_escalation: str | None = Field(default=None, description="the state of the current signing call")
    runs: int = 1


# ----------------------------------------------------------------- what its activities take


class RecordRequest(BaseModel):
    workflow_id: str
    run_id: str
    rules_id: str
    rules_version: str
    events: list[Event]
    view: WorkOrderView
    incident_events: list[Event] = Field(default_factory=list, description="written under the linked incident")


class UnitRequest(BaseModel):
    unit_id: str
    rules: WorkOrderRules
    policy: str


class UnitResult(BaseModel):
    found: bool
    unit_name: str = ""
    contact: str = ""
    answerers: list[str] = Field(default_factory=list)
    targets: list[Target] = Field(default_factory=list)
    gaps: list[str] = Field(default_factory=list)


class NotifyRequest(BaseModel):
    """抄报消防救援: the fire rescue unit is told (no answer needed)."""

    record: RecordRequest
    unit_id: str
    rules: WorkOrderRules


class PostRequest(BaseModel):
    """回访: the result goes to the hotline platform, idempotent by ticket and version."""

    record: RecordRequest
    version: int


class PostResult(BaseModel):
    receipt: str = ""
    posted_at: datetime
    duplicate: bool = False


class FlushRequest(BaseModel):
    record: RecordRequest
    episode: str
    kind: str
    ref: str
    label: str
    sends: list[Send]
    records: list[Record]
