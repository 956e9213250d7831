"""The spot check's messages: what it is started with, what it shows, what its activities take
(activities/duty/spotcheck.py), what people send, and the sweep's."""
from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from definitions.schema.duty import SpotCheckSettings
from workflows.common import Actor, Event
from workflows.escalation import Target

CLOSE_AFTER_ANSWERS = "spotcheck-close-after-answers"
"""workflow.patched id: the check does not close while an answer is being recorded."""
Channel = Literal["voice", "link", "phone", "sms"]


def check_id_for(callout_id: str) -> str:
    return f"spotcheck-{callout_id}"


class SpotCheckInput(BaseModel):
    callout_id: str
    settings: SpotCheckSettings
    version: str = ""
    not_before: datetime | None = Field(default=None, description="start calling then (the call-out's end + delay)")
    started_by: str = "sweep"


class Sampled(BaseModel):
    person_id: str
    name: str
    label: str
    village_id: str = ""
    village_name: str = ""
    town_id: str = ""
    town_name: str = ""
    target: Target
    follow_up: Target | None = Field(default=None, description="whom a 'no' goes to (the town head)")


class OpenRequest(BaseModel):
    check_id: str
    run_id: str
    callout_id: str
    settings: SpotCheckSettings
    version: str
    started_by: str


class Opened(BaseModel):
    status: Literal["open", "skipped"]
    reason: str = ""
    title: str = ""
    level: str = ""
    candidates: int = 0
    sampled: list[Sampled] = Field(default_factory=list)


class PersonView(BaseModel):
    person_id: str
    name: str
    label: str
    village_id: str = ""
    town_id: str = ""
    state: str = "pending"
    answers: dict[str, bool] | None = None
    channel: str | None = None
    answered_at: datetime | None = None
    answered_by: str | None = None


class FollowupView(BaseModel):
    key: str
    town_id: str
    town_name: str = ""
    about_person_id: str
    about_name: str = ""
    failed: list[str]
    responsible_id: str | None = None
    responsible_name: str = ""
    due_at: datetime
    opened_at: datetime
    status: Literal["open", "acknowledged", "resolved", "unresolved"] = "open"
    overdue: bool = False
    acknowledged_at: datetime | None = None
    acknowledged_by: str | None = None
    acknowledged_via: str | None = None
    resolved_at: datetime | None = None
    resolved_by: str | None = None
    resolution: str | None = None


class SpotCheckView(BaseModel):
    check_id: str
    callout_id: str
    status: Literal["waiting", "running", "closed", "skipped"] = "waiting"
    title: str = ""
    level: str = ""
    questions: list[dict] = Field(default_factory=list)
    persons: list[PersonView] = Field(default_factory=list)
    followups: list[FollowupView] = Field(default_factory=list)
    opened_at: datetime | None = None
    closed_at: datetime | None = None


class RecordRequest(BaseModel):
    workflow_id: str
    run_id: str
    events: list[Event]
    view: SpotCheckView


class AnswerIn(Actor):
    person_id: str = Field(min_length=1, max_length=100)
    answers: dict[str, bool]
    channel: Channel
    ref: str = Field(default="", max_length=200, description="the answer's unique id (call sid, link id)")
    note: str | None = Field(default=None, max_length=2000)


class ResolveIn(Actor):
    key: str = Field(min_length=1, max_length=300)
    note: str = Field(min_length=1, max_length=2000, description="what was done")


def late_answer_payload(p: PersonView, req: AnswerIn, state: str) -> dict[str, Any]:
    """The `spotcheck.answered.late` event's payload: what was answered and that the check was over (`state`:
    closing, or closed when the store records it)."""
    return {"person_id": p.person_id, "name": p.name, "answers": p.answers, "late": True, "state_at_answer": state,
            "no": [k for k, ok in (p.answers or {}).items() if not ok], "note": req.note, "ref": req.ref,
            "by_proxy": req.actor != p.person_id}


class SweepInput(BaseModel):
    settings: SpotCheckSettings
    version: str = ""


class Candidate(BaseModel):
    callout_id: str
    ended_at: datetime


class SweepResult(BaseModel):
    started: list[str] = Field(default_factory=list)

