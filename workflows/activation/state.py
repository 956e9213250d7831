"""An activation's state: the posts and who holds them, the work it follows up (tasks and directives 督办),
its dispatch plans, its reinforcement requests, its levels; and how each of them moves (transitions as
methods, pure: the workflow passes the time in). Carried whole across continue-as-new."""
from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Literal

from pydantic import BaseModel, Field
from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from definitions.schema.plans import LEVEL_ZH, Season
    from definitions.schema.reporting import Severity
    from workflows.callout import ShardEvents
    from workflows.escalation import Contact
    from workflows.kit.episodes import Episode

OPEN = ("open", "acknowledged", "in_progress", "blocked", "returned")  # an item still owes its work
ItemState = Literal["open", "acknowledged", "in_progress", "blocked", "reported", "returned", "accepted", "completed",
                    "closed"]
STATE_ZH = {"open": "待签收", "acknowledged": "已签收", "in_progress": "办理中", "blocked": "受阻", "reported": "已报完成待审核",
            "returned": "已退回", "accepted": "已办结", "completed": "已签收办结", "closed": "已关闭"}
ITEM_ZH = {"task": "任务", "directive": "指令"}
KIND_ZH = {"experts": "专家", "teams": "救援队伍", "supplies": "物资"}
FEEDBACK_STATE = {"progress": "in_progress", "blocked": "blocked", "done": "reported"}


def level_zh(level: Severity | str) -> str:
    return LEVEL_ZH[Severity(level).value]


def late_s(at: datetime, due: datetime) -> int:
    """Seconds past the time limit, rounded up (0: in time)."""
    return max(0, math.ceil((at - due).total_seconds()))


def remind_at(now: datetime, due: datetime, before: timedelta) -> datetime | None:
    """When to remind before a time limit; None when that is past already."""
    at = due - before
    return at if at > now else None


class Holder(BaseModel):
    """A post the plan names, as the directory fills it."""

    key: str
    position: str
    org_unit: str | None = None
    unit_name: str = ""
    label: str
    person: Contact | None = None
    deputy: Contact | None = None
    superior: Contact | None = None

    def persons(self) -> set[str]:
        return {c.person_id for c in (self.person, self.deputy) if c is not None}


class Feedback(BaseModel):
    kind: Literal["progress", "done", "blocked"]
    text: str
    by: str
    at: datetime
    on_behalf: bool = False


class Decision(BaseModel):
    decision: Literal["accept", "return"]
    comments: str = ""
    by: str
    at: datetime


class Item(BaseModel):
    """A standing task 规定任务 or a directive 指令, followed up until it is accepted (督办)."""

    id: str
    kind: Literal["task", "directive"]
    title: str
    text: str
    task_id: str | None = None
    group: str | None = None
    unit: str | None = None
    assignee: Holder
    issued_by: str
    issued_at: datetime
    due_at: datetime
    first_due_at: datetime
    remind_at: datetime | None = None
    feedback_required: bool = True
    state: ItemState = "open"
    acknowledged_at: datetime | None = None
    acknowledged_by: str | None = None
    acknowledged_via: str | None = None
    unreachable: bool = False
    feedback: list[Feedback] = Field(default_factory=list)
    decisions: list[Decision] = Field(default_factory=list)
    reported_at: datetime | None = None
    reminded_at: datetime | None = None
    overdue_at: datetime | None = None
    rounds: int = Field(default=0, description="how often its deadline was set again (returned with more time)")
    closed_at: datetime | None = None
    closed_reason: str | None = None
    late_by_s: int | None = None

    @property
    def word(self) -> str:
        return ITEM_ZH[self.kind]

    def acknowledged(self, at: datetime, by: str, via: str | None) -> None:
        self.acknowledged_at, self.acknowledged_by, self.acknowledged_via = at, by, via
        if self.state == "open":
            self.state = "acknowledged" if self.feedback_required else "completed"

    def fed_back(self, fb: Feedback) -> None:
        """Progress, blocked or done; done without a required feedback completes it at once."""
        self.feedback.append(fb)
        self.state = FEEDBACK_STATE[fb.kind]  # type: ignore[assignment]
        if fb.kind == "done":
            self.reported_at = fb.at
            if not self.feedback_required:
                self.state = "completed"

    def accept(self, d: Decision) -> int:
        """Accepted 办结: the seconds it was late (against the time limit of its round)."""
        self.decisions.append(d)
        self.state = "accepted"
        self.late_by_s = late_s(self.reported_at or d.at, self.first_due_at if self.rounds == 0 else self.due_at)
        return self.late_by_s

    def send_back(self, d: Decision, due_in: timedelta | None, before: timedelta) -> None:
        """Returned with what is missing; with a new time limit, a new round of reminders and overdue calls."""
        self.decisions.append(d)
        self.state = "returned"
        if due_in is not None:
            self.rounds += 1
            self.due_at = d.at + due_in
            self.remind_at, self.reminded_at, self.overdue_at = remind_at(d.at, self.due_at, before), None, None

    def close(self, at: datetime, reason: str) -> None:
        self.state, self.closed_at, self.closed_reason = "closed", at, reason

    def next_times(self) -> list[datetime]:
        """Its reminder and its time limit, while it still owes its work."""
        if self.state not in OPEN:
            return []
        out = [self.remind_at] if self.remind_at and self.reminded_at is None else []
        return out + ([self.due_at] if self.overdue_at is None else [])


class LevelChange(BaseModel):
    n: int
    level: Severity
    previous: Severity | None = None
    at: datetime
    by: str
    role: str
    reason: str


class Consultation(BaseModel):
    agree: bool
    opinion: str
    by: str
    at: datetime
    on_behalf: bool = False
    note: str | None = None


class InvitedExpert(BaseModel):
    """An expert of the register called to a 会商研判 (the API reads the register; the workflow only calls)."""

    id: str
    name: str
    field: str
    field_zh: str = ""
    person_id: str = Field(description="the directory's person, or expert:<id> for an expert with only a mobile")
    mobile: str | None = None
    confirmed_at: datetime | None = None
    confirmed_via: str | None = None


class Conclusion(BaseModel):
    text: str
    by: str
    at: datetime
    present: list[str] = Field(default_factory=list, description="expert ids at the meeting")


class ExpertMeeting(BaseModel):
    """会商研判: experts of the fields needed convened for the response (workflows/activation/experts.py)."""

    seq: int
    fields: list[str]
    at: datetime = Field(description="when the meeting is")
    place: str
    topic: str = ""
    requested_by: str
    requested_at: datetime
    experts: list[InvitedExpert] = Field(default_factory=list)
    conclusions: list[Conclusion] = Field(default_factory=list)


class DispatchedTeam(BaseModel):
    """A rescue team of the resource register named by a dispatch plan, as the register had it when the plan was
    drafted (and the team marked busy): whom its order goes to (the team's duty phone, else its leader)."""

    id: str
    name: str
    kind: str
    strength: int
    town_id: str | None = None
    contact: str = Field(default="", description="who answers: the team's duty phone or its leader")
    mobile: str | None = None


class DispatchPlan(BaseModel):
    seq: int
    version: int = 1
    forces: list[str]
    teams: list[DispatchedTeam] = Field(default_factory=list, description="register teams (marked busy)")
    task: str
    place: str = ""
    drafted_by: str
    drafted_at: datetime
    on_behalf: bool = False
    season: Season | None = None
    consult_required: bool = False
    state: Literal["consulting", "drafted", "returned", "approved", "closed"] = "drafted"
    consultations: list[Consultation] = Field(default_factory=list)
    decided_by: str | None = None
    decided_at: datetime | None = None
    comments: str | None = None
    sector_informed_at: datetime | None = None

    def consulted(self, c: Consultation) -> None:
        self.consultations.append(c)
        self.state = "drafted" if c.agree else "returned"

    def decided(self, approve: bool, by: str, at: datetime, comments: str) -> None:
        self.decided_by, self.decided_at, self.comments = by, at, comments or None
        self.state = "approved" if approve else "returned"


class Answer(BaseModel):
    decision: Literal["granted", "partial", "refused"]
    detail: str
    by_whom: str
    recorded_by: str
    at: datetime


class ReinforcementRequest(BaseModel):
    seq: int
    kind: Literal["experts", "teams", "supplies"]
    detail: str
    quantity: str = ""
    requested_by: str
    requested_at: datetime
    due_at: datetime
    state: Literal["requested", "answered", "closed"] = "requested"
    received_at: datetime | None = None
    overdue_at: datetime | None = None
    answer: Answer | None = None
    late_by_s: int | None = None

    def answered(self, a: Answer) -> None:
        self.state, self.answer, self.late_by_s = "answered", a, late_s(a.at, self.due_at)


class ActivationState(BaseModel):
    activated_at: datetime
    level: Severity
    levels: list[LevelChange]
    holders: dict[str, Holder] = Field(default_factory=dict)
    duty: dict[str, Contact] = Field(default_factory=dict)
    district: str = Field(default="", description="the district's name, from the directory")
    gaps: list[str] = Field(default_factory=list)
    units: list[str] = Field(default_factory=list, description="org units that took part (for the review)")
    items: list[Item] = Field(default_factory=list)
    episodes: list[Episode] = Field(default_factory=list)
    dispatches: list[DispatchPlan] = Field(default_factory=list)
    reinforcements: list[ReinforcementRequest] = Field(default_factory=list)
    meetings: list[ExpertMeeting] = Field(default_factory=list, description="会商研判 (experts convened)")
    directives: int = 0
    terminated_at: datetime | None = None
    terminated_by: str | None = None
    termination_reason: str | None = None
    review_workflow_id: str | None = None
    pending: ShardEvents = Field(default_factory=ShardEvents)
    runs: int = 1

    def item(self, item_id: str) -> Item:
        return next(i for i in self.items if i.id == item_id)

    def dispatch(self, seq: int) -> DispatchPlan:
        return next(x for x in self.dispatches if x.seq == seq)

    def reinforcement(self, seq: int) -> ReinforcementRequest:
        return next(x for x in self.reinforcements if x.seq == seq)

    def took_part(self, h: Holder | None) -> None:
        """An org unit that took part (the review asks it for its summary)."""
        if h and h.org_unit and h.org_unit not in self.units:
            self.units.append(h.org_unit)

    def next_times(self) -> list[datetime]:
        """Reminders and time limits still ahead: items' and reinforcement answers'."""
        times = [t for i in self.items for t in i.next_times()]
        return times + [r.due_at for r in self.reinforcements if r.state == "requested" and r.overdue_at is None]
