"""An activation's messages: what it is started with, what people send it (the updates' `*In`), what it
shows (its view, the read model) and what its activities take (workflows/activation/workflow.py runs it)."""
from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field
from temporalio import workflow

from workflows import subjects
from workflows.common import Actor as Caller
from workflows.common import Event

with workflow.unsafe.imports_passed_through():
    from definitions.schema.common import Duration
    from definitions.schema.plans import ResponsePlan, Season
    from definitions.schema.reporting import Severity
    from workflows.activation.state import (
        ActivationState, DispatchedTeam, DispatchPlan, ExpertMeeting, Holder, InvitedExpert, Item, LevelChange,
        ReinforcementRequest)
    from workflows.escalation import Contact, Record, Send

REVIEW_WORKFLOW = "PostEventReviewWorkflow"
EpisodeKind = Literal["convene", "notice", "overdue", "orders", "request", "chase", "experts"]

# activation/<activation id> (one builder per kind: workflows/subjects.py)
subject_of = subjects.activation_subject


def workflow_id_of(activation_id: str) -> str:
    return f"activation-{activation_id}"


def activation_id_of(incident_id: str, plan_id: str) -> str:
    """One activation of a plan per incident: the id derives from both (a resend starts nothing new)."""
    return f"{incident_id}-{plan_id}"


# ----------------------------------------------------------------- what it is started with


class ActivationInfo(BaseModel):
    activation_id: str
    incident_id: str
    incident_title: str = ""
    town_id: str | None = Field(default=None, description="the incident's town: posts written @incident_town")
    level: Severity
    reason: str
    activated_by: str
    activated_role: str
    warning_id: str | None = Field(default=None, description="the warning whose response proposal started it")
    proposal_id: str | None = Field(default=None, description="the response proposal accepted (workflows/proposal.py)")


class ActivationInput(BaseModel):
    info: ActivationInfo
    plan: ResponsePlan
    plan_version: str
    max_history: int = Field(default=8000, description="continue as new past this many history events")
    state: ActivationState | None = None


# ----------------------------------------------------------------- requests (updates)


class Actor(Caller):
    """Who asks (from the caller's token), and when acting for someone, how they confirmed."""

    note: str | None = Field(default=None, max_length=1000, description="acting for someone: how they confirmed")


class DirectiveIn(Actor):
    text: str = Field(min_length=1, max_length=4000)
    title: str = Field(default="", max_length=200)
    assignee: str = Field(min_length=1, max_length=100, description="group:<id> of an active working group, or an org unit id")
    due_at: datetime | None = None
    due_in: Duration | None = None


class ItemIn(Actor):
    item_id: str


class PersonAckIn(Actor):
    """Confirm for one person everything they were called for in this response (by phone)."""

    person_id: str = Field(min_length=1, max_length=100)


class FeedbackIn(ItemIn):
    kind: Literal["progress", "done", "blocked"]
    text: str = Field(min_length=1, max_length=4000)


class ItemReviewIn(ItemIn):
    decision: Literal["accept", "return"]
    comments: str = Field(default="", max_length=4000)
    due_in: Duration | None = Field(default=None, description="returning: a new time limit from now")


class LevelIn(Actor):
    level: Severity
    reason: str = Field(min_length=1, max_length=2000)


class DispatchIn(Actor):
    forces: list[str] = Field(default_factory=list, description="force ids of the plan")
    teams: list[str] = Field(default_factory=list, description="team ids of the resource register (marked busy)")
    task: str = Field(min_length=1, max_length=4000)
    place: str = Field(default="", max_length=500)


class ExpertMeetingIn(Actor):
    """会商研判: convene the register's experts of `fields` (the API fills `experts` from the register)."""

    fields: list[str] = Field(min_length=1, max_length=20)
    at: datetime = Field(description="when the meeting is (with a time zone)")
    place: str = Field(min_length=1, max_length=500)
    topic: str = Field(default="", max_length=2000)
    experts: list[InvitedExpert] = Field(default_factory=list, max_length=200)


class ConclusionIn(Actor):
    seq: int
    text: str = Field(min_length=1, max_length=8000)
    present: list[str] = Field(default_factory=list, max_length=200, description="expert ids at the meeting")


class ConsultIn(Actor):
    seq: int
    agree: bool
    opinion: str = Field(min_length=1, max_length=4000)


class DispatchDecisionIn(Actor):
    seq: int
    decision: Literal["approve", "return"]
    comments: str = Field(default="", max_length=4000)


class ReinforceIn(Actor):
    kind: Literal["experts", "teams", "supplies"]
    detail: str = Field(min_length=1, max_length=4000)
    quantity: str = Field(default="", max_length=200)


class ReinforceAnswerIn(Actor):
    seq: int
    decision: Literal["granted", "partial", "refused"]
    detail: str = Field(min_length=1, max_length=4000)
    by_whom: str = Field(min_length=1, max_length=200, description="who answered for the city")


class TerminateIn(Actor):
    reason: str = Field(min_length=1, max_length=2000)


# ----------------------------------------------------------------- views


class SeatView(BaseModel):
    post: str
    roles: list[str]
    label: str
    person_id: str | None
    name: str | None
    state: str
    acknowledged_at: datetime | None = None
    acknowledged_by: str | None = None
    escalated: bool = False


class GroupView(BaseModel):
    id: str
    name_zh: str
    active: bool
    lead: str
    lead_person_id: str | None
    lead_state: str | None
    members: list[str]
    tasks: list[str]


class OrderView(BaseModel):
    force: str
    name_zh: str
    person_id: str | None
    state: str
    acknowledged_at: datetime | None = None


class DispatchView(DispatchPlan):
    orders: list[OrderView] = Field(default_factory=list)


class ActivationView(BaseModel):
    activation_id: str
    workflow_id: str
    subject: str
    incident_id: str
    incident_title: str
    town_id: str | None = None
    plan_id: str
    plan_name: str
    plan_version: str
    team_kinds: list[str] = Field(default_factory=list, description="the register team kinds its dispatch proposes")
    level: Severity
    level_name: str
    status: Literal["active", "terminated"]
    reason: str
    activated_by: str
    activated_at: datetime
    levels: list[LevelChange]
    commanders: list[SeatView]
    seats: list[SeatView]
    groups: list[GroupView]
    tasks: list[Item]
    directives: list[Item]
    dispatches: list[DispatchView]
    reinforcements: list[ReinforcementRequest]
    meetings: list[ExpertMeeting] = Field(default_factory=list)
    gaps: list[str]
    units: list[str]
    terminated_at: datetime | None
    terminated_by: str | None
    termination_reason: str | None
    review_workflow_id: str | None
    runs: int


# ----------------------------------------------------------------- activity requests


class RecordRequest(BaseModel):
    workflow_id: str
    run_id: str
    info: ActivationInfo
    plan_id: str
    plan_version: str
    events: list[Event]
    view: ActivationView


class ResolveRequest(BaseModel):
    plan: ResponsePlan
    town_id: str | None = None
    units: list[str] = Field(default_factory=list, description="org units whose head a directive goes to")
    seasons: list[Season] = Field(default_factory=list, description="which of these special periods is it now?")
    at: datetime


class ResolveResult(BaseModel):
    holders: dict[str, Holder] = Field(default_factory=dict)
    unit_heads: dict[str, Holder] = Field(default_factory=dict)
    duty: dict[str, Contact] = Field(default_factory=dict)
    gaps: list[str] = Field(default_factory=list)
    season: Season | None = None
    district: str = Field(default="", description="the district's name in the directory (store.directory.district)")


class ReserveRequest(BaseModel):
    """Mark register teams busy for a dispatch plan (activities/resources.py), or refuse if one is not available."""

    subject: str
    workflow_id: str
    run_id: str | None = None
    holder: str = Field(description="what the teams are busy with: `<workflow id>/dispatch/<seq>/v<version>`")
    teams: list[str]
    actor: str
    step_id: str


class ReserveResult(BaseModel):
    teams: list[DispatchedTeam] = Field(default_factory=list)
    refusal: tuple[str, str] | None = Field(default=None, description="(not_found | conflict, why): nothing was marked")


class ReleaseRequest(BaseModel):
    """Make the teams busy with `holder` (a prefix: a whole activation, or one dispatch plan) available again."""

    subject: str
    workflow_id: str
    run_id: str | None = None
    holder: str
    reason: str
    step_id: str


class Notice(BaseModel):
    """A message that needs no answer (reminder, stand-down, consultation request, 报备, termination)."""

    key: str
    person_id: str
    name: str = ""
    channel: str
    to: str
    text: str
    due_at: datetime | None = Field(default=None, description="filled into {due} in local time")


class NotifyRequest(BaseModel):
    record: RecordRequest
    kind: str
    step_id: str
    notices: list[Notice]
    payload: dict = Field(default_factory=dict)


class FlushRequest(BaseModel):
    record: RecordRequest
    episode: str
    kind: EpisodeKind
    ref: str
    label: str
    text: str
    due_at: datetime | None = None
    roles: dict[str, str] = Field(default_factory=dict)
    sends: list[Send]
    records: list[Record]
