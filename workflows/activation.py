"""Plan activation by response level 分级响应 (seeds 001, 003 篇三/篇四), one workflow per activation.

An authorised person activates a plan (definitions/plans/) at a level I–IV for an
incident. The workflow then, all through the shared escalation interpreter:

- convenes the HQ: the level's commander 指挥长 and deputies, the HQ members and the
  lead of every working group started at that level are called and must acknowledge
  (a silent commander is escalated to the deputy, then the superior);
- opens the level's standing tasks, each with its time limit from the moment it opens,
  and tracks them exactly like the commander's directives 指令 (督办反馈机制): the
  assignee is notified and acknowledges → a reminder before the limit → feedback
  (progress / done / blocked) → the commander accepts or returns it; past the limit
  without a done report the assignee is called again and then their superior, and an
  accepted late report keeps a late mark;
- force dispatch 力量调度 (seed 003 篇四): fire rescue drafts, emergency management
  approves — in a special period (汛期, 森林防火期; dates are data) only once the sector
  department has agreed — then orders go to the forces, each acknowledging, and the
  sector department is informed (报备);
- reinforcement requests to the city (experts, teams, supplies) are tracked to their
  answer; no answer in time and the duty chief is called to chase it;
- the level goes up or down (new commanders and groups called out, new tasks opened,
  tasks no longer needed closed, those stood down told); an authorised termination closes
  everything still open and starts the post-event review (PostEventReviewWorkflow, a child
  left running when this workflow ends).

People act through updates whose validators say who may act and in which order. Every
step is written to the audit chain under the subject ``activation/<activation id>``.
Long activations continue as new with their whole state.
"""
from __future__ import annotations

import asyncio
import math
from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, Field
from temporalio import workflow
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.workflow import ParentClosePolicy

from workflows import subjects
from workflows.common import ACTIVITY, CONFLICT, FORBIDDEN, INVALID, NOT_FOUND, Event
from workflows.common import Actor as Caller

with workflow.unsafe.imports_passed_through():
    from definitions.schema.common import Duration
    from definitions.schema.plans import LEVEL_ZH, ResponsePlan, Season
    from definitions.schema.reporting import Severity
    from workflows.callout import ShardEvents
    from workflows.escalation import Ack, Actions, Contact, Escalation, FlushResult, Inbox, Record, Report, Send, Target, drive
    from workflows.escalation import record_late_answers

REVIEW_WORKFLOW = "PostEventReviewWorkflow"
OPEN = ("open", "acknowledged", "in_progress", "blocked", "returned")  # an item still owes its work
ItemState = Literal["open", "acknowledged", "in_progress", "blocked", "reported", "returned", "accepted", "completed",
                    "closed"]
EpisodeKind = Literal["convene", "notice", "overdue", "orders", "request", "chase"]
STATE_ZH = {"open": "待签收", "acknowledged": "已签收", "in_progress": "办理中", "blocked": "受阻", "reported": "已报完成待审核",
            "returned": "已退回", "accepted": "已办结", "completed": "已签收办结", "closed": "已关闭"}
KIND_ZH = {"experts": "专家", "teams": "救援队伍", "supplies": "物资"}


# activation/<activation id> (one builder per kind: workflows/subjects.py)
subject_of = subjects.activation_subject


def workflow_id_of(activation_id: str) -> str:
    return f"activation-{activation_id}"


def activation_id_of(incident_id: str, plan_id: str) -> str:
    """One activation of a plan per incident: the id derives from both (a resend starts nothing new)."""
    return f"{incident_id}-{plan_id}"


# ----------------------------------------------------------------- messages


class ActivationInfo(BaseModel):
    activation_id: str
    incident_id: str
    incident_title: str = ""
    town_id: str | None = Field(default=None, description="the incident's town: posts written @incident_town")
    level: Severity
    reason: str
    activated_by: str
    activated_role: str


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


class Episode(BaseModel):
    """One run of the escalation interpreter."""

    name: str
    kind: EpisodeKind
    ref: str
    label: str
    text: str = ""
    due_at: datetime | None = None
    roles: dict[str, str] = Field(default_factory=dict, description="target key -> the roles it is called for")
    esc: Escalation
    stop: str | None = None
    silent: bool = False
    done: bool = False


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


class DispatchPlan(BaseModel):
    seq: int
    version: int = 1
    forces: list[str]
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


class ActivationState(BaseModel):
    activated_at: datetime
    level: Severity
    levels: list[LevelChange]
    holders: dict[str, Holder] = Field(default_factory=dict)
    duty: dict[str, Contact] = Field(default_factory=dict)
    gaps: list[str] = Field(default_factory=list)
    units: list[str] = Field(default_factory=list, description="org units that took part (for the review)")
    items: list[Item] = Field(default_factory=list)
    episodes: list[Episode] = Field(default_factory=list)
    dispatches: list[DispatchPlan] = Field(default_factory=list)
    reinforcements: list[ReinforcementRequest] = Field(default_factory=list)
    directives: int = 0
    terminated_at: datetime | None = None
    terminated_by: str | None = None
    termination_reason: str | None = None
    review_workflow_id: str | None = None
    pending: ShardEvents = Field(default_factory=ShardEvents)
    runs: int = 1


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
    forces: list[str] = Field(min_length=1)
    task: str = Field(min_length=1, max_length=4000)
    place: str = Field(default="", max_length=500)


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
    plan_id: str
    plan_name: str
    plan_version: str
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


# ----------------------------------------------------------------- the procedure's rules of order


def level_zh(level: Severity | str) -> str:
    return LEVEL_ZH[Severity(level).value]


def _late_s(at: datetime, due: datetime) -> int:
    return max(0, math.ceil((at - due).total_seconds()))


class Rules:
    """Who may do what, and when: the validators' reasons (pure, over the state)."""

    def __init__(self, plan: ResponsePlan, s: ActivationState):
        self.plan, self.s = plan, s

    def commanders(self, level: Severity) -> set[str]:
        lv = self.plan.level(level)
        out: set[str] = set()
        for p in (lv.commander, *lv.deputies):
            h = self.s.holders.get(p.key)
            out |= h.persons() if h else set()
        return out

    def holder_persons(self, post_key: str) -> set[str]:
        h = self.s.holders.get(post_key)
        return h.persons() if h else set()

    def item(self, item_id: str) -> Item | None:
        return next((i for i in self.s.items if i.id == item_id), None)

    def _role(self, allowed: list[str], req: Actor, what: str) -> tuple[str, str] | None:
        if req.role not in allowed:
            return FORBIDDEN, f"role {req.role!r} may not {what}; allowed: {', '.join(allowed)}"
        return None

    def _commander(self, req: Actor, levels: list[Severity], what: str) -> tuple[str, str] | None:
        if req.role == "commander" and not any(req.actor in self.commanders(lv) for lv in levels):
            names = ", ".join(f"{level_zh(lv)}指挥长/副指挥长" for lv in levels)
            return FORBIDDEN, f"{req.actor} is not {names} of this activation and may not {what}"
        return None

    def acting_for(self, req: Actor, persons: set[str], whose: str, need_note: bool) -> tuple[str, str] | None:
        """The one rule for acting in someone's name (an item's assignee, a person called): they themselves,
        or the plan's proxy roles (the duty office), who say how the person confirmed."""
        if req.actor in persons:
            return None
        if req.role not in self.plan.roles.proxy:
            return FORBIDDEN, (f"{req.actor} is not {whose}; only the duty office ({', '.join(self.plan.roles.proxy)}) "
                               f"may act for them, not role {req.role!r}")
        if need_note and not (req.note or "").strip():
            return INVALID, "note: acting for someone, say how they confirmed (e.g. 电话确认已收到)"
        return None

    def refusal(self, action: str, req: Actor, now: datetime) -> tuple[str, str] | None:
        s, plan = self.s, self.plan
        if s.terminated_at is not None:
            return CONFLICT, (f"the response was terminated at {s.terminated_at.isoformat()} by {s.terminated_by}; "
                              "nothing more can be done in it")
        if action == "directive":
            assert isinstance(req, DirectiveIn)
            why = self._role(plan.roles.direct, req, "issue directives") or self._commander(req, [s.level], "issue directives")
            if why:
                return why
            if (req.due_at is None) == (req.due_in is None):
                return INVALID, "give the time limit as due_at (a time) or due_in (like 2h), one of them"
            due = req.due_at if req.due_at is not None else now + (req.due_in or timedelta(0))
            if due.tzinfo is None:
                return INVALID, "due_at: give a time zone, e.g. 2026-07-01T18:00:00+08:00"
            if due <= now:
                return INVALID, "due_at: the time limit must be in the future"
            if due > now + timedelta(days=30):
                return INVALID, "due_at: at most 30 days ahead"
            if req.assignee.startswith("group:"):
                gid = req.assignee.split(":", 1)[1]
                active = plan.level(s.level).groups
                if gid not in active:
                    return INVALID, (f"assignee: {gid!r} is not a working group started at {level_zh(s.level)} "
                                     f"(active: {', '.join(active)})")
        elif action in ("acknowledge", "feedback", "review"):
            assert isinstance(req, ItemIn)
            item = self.item(req.item_id)
            if item is None:
                return NOT_FOUND, f"no task or directive {req.item_id!r} in this activation"
            if item.state == "closed":
                return CONFLICT, f"{item.id} was closed ({item.closed_reason})"
            if action in ("acknowledge", "feedback"):
                why = self.acting_for(req, item.assignee.persons(), f"the assignee of {item.id} ({item.assignee.label})",
                                      need_note=action == "acknowledge")
                if why:
                    return why
            if action == "acknowledge" and item.acknowledged_at is not None:
                return CONFLICT, f"{item.id} was acknowledged already at {item.acknowledged_at.isoformat()} by {item.acknowledged_by}"
            if action == "feedback":
                assert isinstance(req, FeedbackIn)
                if item.state in ("accepted", "completed"):
                    return CONFLICT, f"{item.id} is done ({STATE_ZH[item.state]}); nothing more to feed back"
                if item.state == "reported":
                    return CONFLICT, f"{item.id} was reported done and awaits the commander's decision (accept or return)"
            if action == "review":
                assert isinstance(req, ItemReviewIn)
                why = self._role(plan.roles.direct, req, "accept or return work") or self._commander(
                    req, [s.level], "accept or return work")
                if why:
                    return why
                if item.state != "reported":
                    return CONFLICT, (f"{item.id} is {item.state} ({STATE_ZH[item.state]}): only work reported done "
                                      "can be accepted or returned")
                if req.decision == "return" and not req.comments.strip():
                    return INVALID, "comments: say what is missing when returning work"
        elif action == "acknowledge_person":
            assert isinstance(req, PersonAckIn)
            if not any(req.person_id in ts.recipients for ep in s.episodes for ts in ep.esc.targets.values()):
                return NOT_FOUND, f"nobody with id {req.person_id!r} was called in this response"
            why = self.acting_for(req, {req.person_id}, req.person_id, need_note=True)
            if why:
                return why
        elif action == "level":
            assert isinstance(req, LevelIn)
            if req.level == s.level:
                return CONFLICT, f"the response is at {level_zh(s.level)} already"
            target = plan.level(req.level)
            why = (self._role(plan.roles.change_level, req, "change the response level")
                   or self._role(target.activate, req, f"raise or set the response to {level_zh(req.level)}")
                   or self._commander(req, [s.level, req.level], "change the response level"))
            if why:
                return why
        elif action == "terminate":
            why = (self._role(plan.level(s.level).terminate, req, f"terminate a {level_zh(s.level)} response")
                   or self._commander(req, [s.level], "terminate the response"))
            if why:
                return why
        elif action == "dispatch":
            assert isinstance(req, DispatchIn)
            mine = req.actor in self.holder_persons(plan.dispatch.drafter.key)
            if not mine and req.role not in plan.roles.proxy:
                return FORBIDDEN, (f"the dispatch plan is drafted by fire rescue ({self._label(plan.dispatch.drafter.key)}); "
                                   f"{req.actor} is not them")
            known = {f.id for f in plan.dispatch.forces}
            unknown = [f for f in req.forces if f not in known]
            if unknown:
                return INVALID, f"forces: unknown {', '.join(unknown)} (the plan has {', '.join(sorted(known))})"
            if len(set(req.forces)) != len(req.forces):
                return INVALID, "forces: each force once"
            last = s.dispatches[-1] if s.dispatches else None
            if last is not None and last.state in ("consulting", "drafted"):
                return CONFLICT, f"dispatch plan {last.seq} awaits {'consultation' if last.state == 'consulting' else 'approval'}"
        elif action in ("consult", "approve"):
            seq = getattr(req, "seq", None)
            d = next((x for x in s.dispatches if x.seq == seq), None)
            if d is None:
                return NOT_FOUND, f"no dispatch plan {seq}"
            approver = plan.dispatch.approver.key
            if action == "consult":
                sector = req.actor in self.holder_persons(plan.dispatch.sector.key)
                em = req.actor in self.holder_persons(approver)
                if not sector and not em:
                    return FORBIDDEN, (f"the consultation is between emergency management ({self._label(approver)}) and the "
                                       f"sector department ({self._label(plan.dispatch.sector.key)}); {req.actor} is neither")
                if em and not sector and not (req.note or "").strip():
                    return INVALID, "note: recording the sector department's opinion, say who gave it and how"
                if d.state != "consulting":
                    return CONFLICT, f"dispatch plan {d.seq} is {d.state}; it does not await consultation"
            else:
                assert isinstance(req, DispatchDecisionIn)
                if req.actor not in self.holder_persons(approver):
                    return FORBIDDEN, f"dispatch plans are approved by emergency management ({self._label(approver)})"
                if d.state == "consulting":
                    season = d.season.label() if d.season else "特殊时期"
                    return CONFLICT, (f"{season}: 须由应急管理部门会商行业主管部门({self._label(plan.dispatch.sector.key)})"
                                      f"同意后方可下达出动指令 / in this special period the sector department must agree "
                                      f"before dispatch plan {d.seq} can be approved")
                if d.state != "drafted":
                    return CONFLICT, f"dispatch plan {d.seq} is {d.state}; only a drafted plan can be approved or returned"
                if req.decision == "return" and not req.comments.strip():
                    return INVALID, "comments: say what to change when returning a dispatch plan"
        elif action == "reinforce":
            why = self._role(plan.roles.reinforce, req, "request reinforcement") or self._commander(
                req, [s.level], "request reinforcement")
            if why:
                return why
        elif action == "answer":
            assert isinstance(req, ReinforceAnswerIn)
            why = self._role(plan.roles.record_answer, req, "record the city's answer")
            if why:
                return why
            r = next((x for x in s.reinforcements if x.seq == req.seq), None)
            if r is None:
                return NOT_FOUND, f"no reinforcement request {req.seq}"
            if r.state != "requested":
                return CONFLICT, f"reinforcement request {r.seq} was answered already ({r.answer.decision if r.answer else r.state})"
        return None

    def _label(self, post_key: str) -> str:
        h = self.s.holders.get(post_key)
        return h.label if h else post_key


# ----------------------------------------------------------------- the workflow


@workflow.defn
class PlanActivationWorkflow:
    @workflow.init
    def __init__(self, inp: ActivationInput) -> None:
        self.inp, self.plan, self.info = inp, inp.plan, inp.info
        now = workflow.now()
        self.s = inp.state or ActivationState(
            activated_at=now, level=inp.info.level,
            levels=[LevelChange(n=0, level=inp.info.level, at=now, by=inp.info.activated_by, role=inp.info.activated_role,
                                reason=inp.info.reason)])
        self.rules = Rules(self.plan, self.s)
        self.inboxes: dict[str, Inbox] = {}
        self.tasks: dict[str, asyncio.Task] = {}
        self.late: list[Ack] = []
        self.io = asyncio.Lock()
        self.changed = self.pausing = self.opened = False

    @workflow.run
    async def run(self, inp: ActivationInput) -> ActivationView:
        if inp.state is None:
            await self._resolve()
            await self._record(Event(kind="activation.started", step_id="started", actor=self.info.activated_by,
                                     at=self.s.activated_at, payload=self._opening()))
            if self.s.gaps:
                await self._record(Event(kind="activation.gap", step_id="gaps/0", at=workflow.now(),
                                         payload={"gaps": self.s.gaps}))
            await self._open_level(0)
        else:
            await self._record(Event(kind="activation.continued", step_id=f"continued/{self.s.runs}", at=workflow.now(),
                                     payload={"run": self.s.runs}))
        self.opened = True
        for ep in self.s.episodes:
            if not ep.done:
                self._start(ep)
        self._deliver(self.s.pending)
        self.s.pending = ShardEvents()

        while self.s.terminated_at is None:
            await self._late_acks()
            await self._timers_due()
            if self._history_is_long():
                await self._continue_as_new()
            await self._sleep_until_next()
        await self._finish()
        await asyncio.gather(*self.tasks.values())  # late answers that came while it closed
        return self.view()

    # ------------------------------------------------------------- levels: convene the HQ, open tasks

    def _seats(self, level: Severity) -> dict[str, list[str]]:
        lv = self.plan.level(level)
        seats: dict[str, list[str]] = {}
        seats.setdefault(lv.commander.key, []).append("指挥长")
        for p in lv.deputies:
            seats.setdefault(p.key, []).append("副指挥长")
        for p in lv.hq:
            seats.setdefault(p.key, []).append("指挥部成员")
        for gid in lv.groups:
            seats.setdefault(self.plan.group(gid).lead.key, []).append(f"{self.plan.group(gid).name_zh}组长")
        return seats

    async def _open_level(self, n: int) -> None:
        """Call out the level's commanders, HQ and group leads; open its tasks not open yet."""
        level, now = self.s.level, workflow.now()
        lv = self.plan.level(level)
        targets, gaps = [], []
        for key, roles in self._seats(level).items():
            h = self.s.holders.get(key)
            commander = "指挥长" in roles
            label = f"{'、'.join(roles)} {h.label if h else key}"
            t = self._target(key, h, self.plan.commander_policy if commander else self.plan.member_policy,
                             priority=0 if commander else (5 if "副指挥长" in roles else (10 if "指挥部成员" in roles else 20)),
                             label=label)
            if t is None:
                gaps.append(f"{'、'.join(roles)}: nobody holds {key}")
            else:
                targets.append(t)
        for gid in lv.groups:
            g = self.plan.group(gid)
            for p in (g.lead, *g.members):
                h = self.s.holders.get(p.key)
                if h and h.org_unit and h.org_unit not in self.s.units:
                    self.s.units.append(h.org_unit)
        text = (f"【启动响应】{self.info.incident_title}:{self.plan.name_zh}启动{lv.name_zh or level_zh(level)}。"
                f"您任{{roles}},请立即到岗履职。")
        await self._record(Event(kind="activation.hq.convened", step_id=f"level/{n}/convened", at=now, payload={
            "level": level.value, "seats": {k: v for k, v in self._seats(level).items()},
            "groups": lv.groups, "gaps": gaps}))
        self._call("convene", str(n), f"{level_zh(level)}响应 指挥部", text, targets,
                   roles={k: "、".join(v) for k, v in self._seats(level).items()})
        for lt in lv.tasks:
            if any(i.task_id == lt.id and i.state != "closed" for i in self.s.items):
                continue
            task = self.plan.task(lt.id)
            group = self.plan.group(task.group)
            h = self.s.holders.get(group.lead.key) or Holder(key=group.lead.key, position=group.lead.position, label=group.lead.key)
            reopened = sum(1 for i in self.s.items if i.task_id == lt.id)
            due = self.s.levels[-1].at + (lt.due or task.due)  # from the activation or the level change
            item = Item(id=f"T-{task.id}" + (f"-{reopened + 1}" if reopened else ""), kind="task", title=task.name_zh,
                        text=task.text_zh, task_id=task.id, group=group.id, assignee=h, issued_by=self.info.activated_by
                        if n == 0 else self.s.levels[-1].by, issued_at=now, due_at=due, first_due_at=due,
                        remind_at=self._remind_at(now, due), feedback_required=task.feedback)
            await self._open_item(item, f"{group.name_zh}:")

    async def _open_item(self, item: Item, prefix: str = "") -> None:
        self.s.items.append(item)
        await self._record(Event(kind=f"activation.{item.kind}.{'opened' if item.kind == 'task' else 'issued'}",
                                 step_id=f"item/{item.id}/opened", actor=item.issued_by, at=item.issued_at, payload={
                                     "item": item.id, "title": item.title, "text": item.text, "group": item.group,
                                     "unit": item.unit, "assignee": item.assignee.label,
                                     "assignee_person": item.assignee.person.person_id if item.assignee.person else None,
                                     "due_at": item.due_at.isoformat(), "feedback_required": item.feedback_required}))
        t = self._target(item.id, item.assignee, self.plan.directives.ack_policy, priority=30, label=item.assignee.label)
        if t is None:
            await self._record(Event(kind="activation.gap", step_id=f"item/{item.id}/gap", at=workflow.now(),
                                     payload={"item": item.id, "gaps": [f"nobody holds {item.assignee.key}"]}))
            return
        word = "任务" if item.kind == "task" else "指令"
        text = f"【{word}{item.id}】{prefix}{item.title}。{item.text} 时限:{{due}}。"
        self._call("notice", item.id, f"{word}{item.id} {item.title}", text, [t], due=item.due_at)

    def _remind_at(self, now: datetime, due: datetime) -> datetime | None:
        at = due - self.plan.directives.remind_before
        return at if at > now else None

    # ------------------------------------------------------------- timers: reminders, overdue work, late answers

    async def _timers_due(self) -> None:
        for item in list(self.s.items):
            now = workflow.now()
            if item.state not in OPEN:
                continue
            if item.remind_at and item.reminded_at is None and now >= item.remind_at:
                item.reminded_at = now
                await self._remind(item)
            if item.overdue_at is None and now >= item.due_at:
                item.overdue_at = now
                await self._record(Event(kind=f"activation.{item.kind}.overdue", step_id=f"item/{item.id}/overdue/{item.rounds}",
                                         at=now, payload={"item": item.id, "title": item.title, "due_at": item.due_at.isoformat(),
                                                          "state": item.state, "assignee": item.assignee.label}))
                t = self._target(f"overdue/{item.id}", item.assignee, self.plan.directives.overdue_policy, priority=0,
                                 label=item.assignee.label)
                if t is not None:
                    word = "任务" if item.kind == "task" else "指令"
                    self._call("overdue", f"{item.id}/{item.rounds}", f"督办 {word}{item.id} {item.title}",
                               f"【督办】{word}{item.id}「{item.title}」已超过时限({{due}})未反馈完成,请立即落实并反馈。",
                               [t], due=item.due_at)
        for r in self.s.reinforcements:
            now = workflow.now()
            if r.state == "requested" and r.overdue_at is None and now >= r.due_at:
                r.overdue_at = now
                await self._record(Event(kind="activation.reinforcement.overdue", step_id=f"reinforcement/{r.seq}/overdue",
                                         at=now, payload={"seq": r.seq, "due_at": r.due_at.isoformat(),
                                                          "to": self.plan.reinforcement.to_zh}))
                chief = self.s.duty.get("duty_chief") or self.s.duty.get("leading_leader")
                if chief is None:
                    await self._record(Event(kind="activation.gap", step_id=f"reinforcement/{r.seq}/gap", at=now,
                                             payload={"gaps": ["no duty chief or leading leader on duty to chase the city"]}))
                    continue
                t = Target(key=f"chase/{r.seq}", tier="chase", position="duty_chief", label=f"值班长{chief.name}",
                           person=chief, others=self.s.duty, policy=self.plan.reinforcement.chase_policy, priority=0)
                self._call("chase", str(r.seq), f"催办增援请求{r.seq}",
                           f"【催办】向{self.plan.reinforcement.to_zh}请求增援{KIND_ZH[r.kind]}({r.detail})已到答复时限"
                           f"({{due}})仍未答复,请立即电话催办。", [t], due=r.due_at)

    async def _remind(self, item: Item) -> None:
        p = item.assignee.person
        notices = [] if p is None else self._notices(f"remind/{item.id}/{item.rounds}", p,
                                                     f"【督办提醒】{item.id}「{item.title}」须于{{due}}前反馈完成,请抓紧落实。",
                                                     due=item.due_at)
        await self._notify("activation.item.reminder", f"item/{item.id}/reminder/{item.rounds}", notices, payload={
            "item": item.id, "title": item.title, "due_at": item.due_at.isoformat(), "state": item.state,
            "to": item.assignee.label})

    async def _late_acks(self) -> None:
        """Answers to calls whose escalation had already run out (unreachable): still acknowledgements."""
        while self.late:
            ack = self.late.pop(0)
            for ep in self.s.episodes:
                if ep.done and any(ack.person_id in ts.recipients and ts.state == "unreachable" for ts in ep.esc.targets.values()):
                    actions = ep.esc.acknowledge(ack)
                    if actions:
                        await self._flush(ep, actions)

    async def _sleep_until_next(self) -> None:
        now = workflow.now()
        times: list[datetime] = []
        for i in self.s.items:
            if i.state in OPEN:
                if i.remind_at and i.reminded_at is None:
                    times.append(i.remind_at)
                if i.overdue_at is None:
                    times.append(i.due_at)
        times += [r.due_at for r in self.s.reinforcements if r.state == "requested" and r.overdue_at is None]
        self.changed = False
        try:
            await workflow.wait_condition(lambda: self.changed or bool(self.late) or self.s.terminated_at is not None,
                                          timeout=max(min(times) - now, timedelta(0)) if times else None)
        except asyncio.TimeoutError:
            pass

    # ------------------------------------------------------------- directives and tasks (督办)

    @workflow.update
    async def issue_directive(self, req: DirectiveIn) -> ActivationView:
        self._refuse_if("directive", req)
        now = workflow.now()
        due = req.due_at if req.due_at is not None else now + (req.due_in or timedelta(0))
        group = unit = None
        if req.assignee.startswith("group:"):
            group = self.plan.group(req.assignee.split(":", 1)[1])
            h = self.s.holders.get(group.lead.key) or Holder(key=group.lead.key, position=group.lead.position,
                                                              label=group.lead.key)
        else:
            unit = req.assignee
            found = await self._lookup(units=[unit])
            h = found.unit_heads.get(unit)
            if h is None or h.person is None:
                raise ApplicationError(f"assignee: nobody heads org unit {unit!r} in the directory "
                                       f"({' / '.join(self.plan.directives.unit_heads)})", type=INVALID, non_retryable=True)
            if h.org_unit and h.org_unit not in self.s.units:
                self.s.units.append(h.org_unit)
        self.s.directives += 1  # numbered once it can be issued (a refused one takes no number)
        item = Item(id=f"D{self.s.directives}", kind="directive", title=req.title or req.text[:30], text=req.text,
                    group=group.id if group else None, unit=unit, assignee=h, issued_by=req.actor, issued_at=now,
                    due_at=due, first_due_at=due, remind_at=self._remind_at(now, due))
        await self._open_item(item, f"{group.name_zh}:" if group else "")
        return self.view()

    @issue_directive.validator
    def _directive_ok(self, req: DirectiveIn) -> None:
        self._refuse_if("directive", req)

    @workflow.update
    async def acknowledge(self, req: ItemIn) -> ActivationView:
        """The assignee confirms receipt (or the duty office for them, by phone)."""
        self._refuse_if("acknowledge", req)
        item = self._item(req.item_id)
        await self._ack_item(item, req, "api" if req.actor in item.assignee.persons() else "proxy")
        return self.view()

    @acknowledge.validator
    def _ack_ok(self, req: ItemIn) -> None:
        self._refuse_if("acknowledge", req)

    @workflow.update
    async def acknowledge_person(self, req: PersonAckIn) -> ActivationView:
        """Everything a person was called for in this response, confirmed by them or for them by the duty office
        (the plan's proxy roles): the same rule as an item's acknowledgement (Rules.acting_for)."""
        self._refuse_if("acknowledge_person", req)
        now = workflow.now()
        channel = "api" if req.actor == req.person_id else "proxy"
        self._deliver(ShardEvents(acks=[Ack(person_id=req.person_id, channel=channel, at=now, actor=req.actor,
                                            note=req.note, ref=f"{channel}:{req.actor}:{req.person_id}:{now.timestamp()}")]))
        return self.view()

    @acknowledge_person.validator
    def _ack_person_ok(self, req: PersonAckIn) -> None:
        self._refuse_if("acknowledge_person", req)

    async def _ack_item(self, item: Item, req: Actor, channel: str) -> None:
        ep = self._episode(f"notice/{item.id}")
        if item.acknowledged_at is not None:
            return
        if ep is None or ep.esc.targets.get(item.id) is None:  # nobody could be called: the answer is the record
            now = workflow.now()
            self._acked(item, now, req.actor, channel)
            await self._record(Event(kind="activation.notice.ack", step_id=f"item/{item.id}/ack", actor=req.actor,
                                     at=now, channel=channel, payload={"item": item.id, "note": req.note}))
            return
        ts = ep.esc.targets[item.id]
        person = req.actor if req.actor in ts.recipients else ts.target.person.person_id
        ack = Ack(person_id=person, channel=channel, at=workflow.now(), actor=req.actor, note=req.note,
                  target_keys=[item.id], ref=f"{channel}:{item.id}:{req.actor}")
        if self.pausing:  # continuing as new: the next run applies it
            self.s.pending.acks.append(ack)
        elif not ep.done and ep.name in self.inboxes:
            self.inboxes[ep.name].put([ack])
            await workflow.wait_condition(lambda: item.acknowledged_at is not None or self.pausing)
        else:
            actions = ep.esc.acknowledge(ack)
            if actions:
                await self._flush(ep, actions)

    @workflow.update
    async def feedback(self, req: FeedbackIn) -> ActivationView:
        """Progress, done or blocked: from the assignee (or recorded for them by the duty office)."""
        self._refuse_if("feedback", req)
        item, now = self._item(req.item_id), workflow.now()
        mine = req.actor in item.assignee.persons()
        if item.acknowledged_at is None:  # feedback says it arrived
            await self._ack_item(item, req, "api" if mine else "proxy")
        fb = Feedback(kind=req.kind, text=req.text, by=req.actor, at=now, on_behalf=not mine)
        item.feedback.append(fb)
        item.state = {"progress": "in_progress", "blocked": "blocked", "done": "reported"}[req.kind]  # type: ignore[assignment]
        if req.kind == "done":
            item.reported_at = now
            if not item.feedback_required:
                item.state = "completed"
        await self._record(Event(kind=f"activation.{item.kind}.feedback", step_id=f"item/{item.id}/feedback/{len(item.feedback)}",
                                 actor=req.actor, at=now, payload={
                                     "item": item.id, "kind": req.kind, "text": req.text, "on_behalf": not mine,
                                     "note": req.note, "due_at": item.due_at.isoformat(), "state": item.state,
                                     "after_due": now > item.due_at}))
        if req.kind == "done":
            self._stop_episodes(f"overdue/{item.id}/", "已反馈完成")
        return self.view()

    @feedback.validator
    def _feedback_ok(self, req: FeedbackIn) -> None:
        self._refuse_if("feedback", req)

    @workflow.update
    async def review_item(self, req: ItemReviewIn) -> ActivationView:
        """The commander accepts the reported work (办结) or returns it with what is missing."""
        self._refuse_if("review", req)
        item, now = self._item(req.item_id), workflow.now()
        item.decisions.append(Decision(decision=req.decision, comments=req.comments, by=req.actor, at=now))
        late: list[Event] = []
        if req.decision == "accept":
            item.state = "accepted"
            item.late_by_s = _late_s(item.reported_at or now, item.first_due_at if item.rounds == 0 else item.due_at)
            if item.late_by_s:
                late.append(Event(kind=f"activation.{item.kind}.late", step_id=f"item/{item.id}/late", at=now, payload={
                    "item": item.id, "title": item.title, "due_at": item.due_at.isoformat(),
                    "reported_at": (item.reported_at or now).isoformat(), "late_by_s": item.late_by_s,
                    "late_by_min": -(-item.late_by_s // 60), "mark": f"逾期{-(-item.late_by_s // 60)}分钟办结"}))
        else:
            item.state = "returned"
            if req.due_in is not None:
                item.rounds += 1
                item.due_at = now + req.due_in
                item.remind_at, item.reminded_at, item.overdue_at = self._remind_at(now, item.due_at), None, None
        await self._record(Event(kind=f"activation.{item.kind}.{'accepted' if req.decision == 'accept' else 'returned'}",
                                 step_id=f"item/{item.id}/review/{len(item.decisions)}", actor=req.actor, at=now, payload={
                                     "item": item.id, "comments": req.comments, "due_at": item.due_at.isoformat(),
                                     "late_by_s": item.late_by_s}), *late)
        if req.decision == "return" and item.assignee.person is not None:
            await self._notify("activation.item.returned_notice", f"item/{item.id}/returned/{len(item.decisions)}",
                               self._notices(f"returned/{item.id}/{len(item.decisions)}", item.assignee.person,
                                             f"【退回】{item.id}「{item.title}」的完成反馈被退回:{req.comments} 时限:{{due}}。",
                                             due=item.due_at), payload={"item": item.id})
        return self.view()

    @review_item.validator
    def _review_ok(self, req: ItemReviewIn) -> None:
        self._refuse_if("review", req)

    def _acked(self, item: Item, at: datetime, by: str, via: str | None) -> None:
        item.acknowledged_at, item.acknowledged_by, item.acknowledged_via = at, by, via
        if item.state == "open":
            item.state = "acknowledged" if item.feedback_required else "completed"

    # ------------------------------------------------------------- level changes and termination

    @workflow.update
    async def change_level(self, req: LevelIn) -> ActivationView:
        self._refuse_if("level", req)
        now, old = workflow.now(), self.s.level
        n = len(self.s.levels)
        self.s.levels.append(LevelChange(n=n, level=req.level, previous=old, at=now, by=req.actor, role=req.role,
                                         reason=req.reason))
        self.s.level = req.level
        up = req.level.rank > old.rank
        await self._record(Event(kind="activation.level.changed", step_id=f"level/{n}", actor=req.actor, at=now, payload={
            "from": old.value, "to": req.level.value, "direction": "up" if up else "down", "reason": req.reason}))
        for ep in self.s.episodes:  # the old level's call-out stops; the new level calls its own
            if ep.kind == "convene" and not ep.done:
                ep.stop, ep.silent = f"响应级别调整为{level_zh(req.level)}", True
        new_seats, old_seats = self._seats(req.level), self._seats(old)
        stood_down = [k for k in old_seats if k not in new_seats]
        lv = self.plan.level(req.level)
        notices: list[Notice] = []
        for key in stood_down:
            h = self.s.holders.get(key)
            if h and h.person:
                notices += self._notices(f"standdown/{n}/{key}", h.person,
                                         f"【响应调整】{self.info.incident_title}:{self.plan.name_zh}已由{level_zh(old)}调整为"
                                         f"{level_zh(req.level)}响应,您不再担任{'、'.join(old_seats[key])},感谢履职。")
        if stood_down:
            await self._notify("activation.level.stood_down", f"level/{n}/stood_down", notices,
                               payload={"posts": stood_down})
        keep = {t.id for t in lv.tasks}
        for item in self.s.items:
            if item.kind == "task" and item.state in (*OPEN, "reported") and item.task_id not in keep:
                await self._close(item, f"响应级别调整为{level_zh(req.level)},该任务不再需要")
        await self._open_level(n)
        return self.view()

    @change_level.validator
    def _level_ok(self, req: LevelIn) -> None:
        self._refuse_if("level", req)

    @workflow.update
    async def terminate(self, req: TerminateIn) -> ActivationView:
        """An authorised termination: everything still open closes; the post-event review starts."""
        self._refuse_if("terminate", req)
        now = workflow.now()
        self.s.terminated_at, self.s.terminated_by, self.s.termination_reason = now, req.actor, req.reason
        closed = []
        for item in self.s.items:
            if item.state in (*OPEN, "reported"):
                closed.append(item.id)
                await self._close(item, "响应终止", tell=False)
        for d in self.s.dispatches:
            if d.state in ("consulting", "drafted", "returned"):
                d.state = "closed"
        for r in self.s.reinforcements:
            if r.state == "requested":
                r.state = "closed"
        people: dict[str, Contact] = {}
        for key in self._seats(self.s.level):
            h = self.s.holders.get(key)
            if h and h.person:
                people.setdefault(h.person.person_id, h.person)
        for ep in self.s.episodes:
            if ep.kind in ("orders", "notice") and ep.ref:
                for ts in ep.esc.targets.values():
                    if ts.sends_total:
                        people.setdefault(ts.target.person.person_id, ts.target.person)
            if not ep.done:
                ep.stop, ep.silent = "响应终止", True
        await self._record(Event(kind="activation.terminated", step_id="terminated", actor=req.actor, at=now, payload={
            "reason": req.reason, "level": self.s.level.value, "closed_items": closed,
            "duration_s": int((now - self.s.activated_at).total_seconds())}))
        text = (f"【响应终止】{self.info.incident_title}:{self.plan.name_zh}{level_zh(self.s.level)}响应已终止({req.reason})。"
                "请各工作组、参与单位及时书面总结,报区应急管理局。")
        notices = [n for pid in sorted(people) for n in self._notices(f"terminated/{pid}", people[pid], text)]
        await self._notify("activation.terminated.notice", "terminated/notice", notices, payload={"people": sorted(people)})
        await self._start_review(req.actor)
        return self.view()

    @terminate.validator
    def _terminate_ok(self, req: TerminateIn) -> None:
        self._refuse_if("terminate", req)

    async def _start_review(self, actor: str) -> None:
        review_id = f"review-{self.info.incident_id}"
        arg = {"incident_id": self.info.incident_id, "activation_id": workflow.info().workflow_id, "started_by": actor,
               "units": sorted(self.s.units)}
        try:
            await workflow.start_child_workflow(REVIEW_WORKFLOW, arg, id=review_id, task_queue=workflow.info().task_queue,
                                                parent_close_policy=ParentClosePolicy.ABANDON)
            kind = "activation.review.started"
        except WorkflowAlreadyStartedError:
            kind = "activation.review.already_started"  # another plan of the same incident started it
        self.s.review_workflow_id = review_id
        await self._record(Event(kind=kind, step_id="review", actor=actor, at=workflow.now(),
                                 payload={"workflow_id": review_id, "workflow_type": REVIEW_WORKFLOW, **arg}))

    async def _close(self, item: Item, reason: str, tell: bool = True) -> None:
        now = workflow.now()
        item.state, item.closed_at, item.closed_reason = "closed", now, reason
        self._stop_episodes(f"notice/{item.id}", reason, exact=True, silent=not tell)
        self._stop_episodes(f"overdue/{item.id}/", reason, silent=not tell)
        await self._record(Event(kind=f"activation.{item.kind}.closed", step_id=f"item/{item.id}/closed", at=now,
                                 payload={"item": item.id, "title": item.title, "reason": reason}))

    def _stop_episodes(self, prefix: str, reason: str, exact: bool = False, silent: bool = False) -> None:
        for ep in self.s.episodes:
            if (ep.name == prefix if exact else ep.name.startswith(prefix)) and not ep.done and ep.stop is None:
                ep.stop, ep.silent = reason, silent

    # ------------------------------------------------------------- force dispatch 力量调度

    @workflow.update
    async def draft_dispatch(self, req: DispatchIn) -> ActivationView:
        """Fire rescue drafts a dispatch plan; in a special period the sector department is asked to agree."""
        self._refuse_if("dispatch", req)
        found = await self._lookup(seasons=self.plan.seasons())
        self._refuse_if("dispatch", req)  # the state may have moved while the calendar was read
        now = workflow.now()
        last = self.s.dispatches[-1] if self.s.dispatches else None
        redraft = last is not None and last.state == "returned"
        d = DispatchPlan(seq=last.seq if redraft and last else len(self.s.dispatches) + 1,
                         version=(last.version + 1) if redraft and last else 1, forces=req.forces, task=req.task,
                         place=req.place, drafted_by=req.actor, drafted_at=now,
                         on_behalf=req.actor not in self.rules.holder_persons(self.plan.dispatch.drafter.key),
                         season=found.season, consult_required=found.season is not None,
                         state="consulting" if found.season is not None else "drafted")
        if redraft:
            self.s.dispatches[-1] = d
        else:
            self.s.dispatches.append(d)
        await self._record(Event(kind="activation.dispatch.drafted", step_id=f"dispatch/{d.seq}/v{d.version}/drafted",
                                 actor=req.actor, at=now, payload={
                                     "seq": d.seq, "version": d.version, "forces": d.forces, "task": d.task,
                                     "place": d.place, "season": d.season.model_dump() if d.season else None,
                                     "consult_required": d.consult_required, "on_behalf": d.on_behalf}))
        forces = "、".join(self._force(f).name_zh for f in d.forces)
        if d.consult_required and d.season is not None:
            sector = self.s.holders.get(self.plan.dispatch.sector.key)
            notices = self._notices(f"consult/{d.seq}/{d.version}", sector.person,
                                    f"【力量调度会商】{d.season.label()}:拟调用{forces}({d.task})。请行业主管部门会商并反馈意见。"
                                    ) if sector and sector.person else []
            await self._notify("activation.dispatch.consult_requested", f"dispatch/{d.seq}/v{d.version}/consult_requested",
                               notices, payload={"seq": d.seq, "season": d.season.id,
                                                 "sector": sector.label if sector else self.plan.dispatch.sector.key})
        approver = self.s.holders.get(self.plan.dispatch.approver.key)
        if approver and approver.person:
            await self._notify("activation.dispatch.approval_requested", f"dispatch/{d.seq}/v{d.version}/approval_requested",
                               self._notices(f"approve/{d.seq}/{d.version}", approver.person,
                                             f"【力量调度审批】消防救援队伍拟调用{forces}:{d.task}。"
                                             + ("须先会商行业主管部门。" if d.consult_required else "请审批。")),
                               payload={"seq": d.seq})
        return self.view()

    @draft_dispatch.validator
    def _dispatch_ok(self, req: DispatchIn) -> None:
        self._refuse_if("dispatch", req)

    @workflow.update
    async def consult_dispatch(self, req: ConsultIn) -> ActivationView:
        self._refuse_if("consult", req)
        d, now = next(x for x in self.s.dispatches if x.seq == req.seq), workflow.now()
        sector = req.actor in self.rules.holder_persons(self.plan.dispatch.sector.key)
        d.consultations.append(Consultation(agree=req.agree, opinion=req.opinion, by=req.actor, at=now,
                                            on_behalf=not sector, note=req.note))
        d.state = "drafted" if req.agree else "returned"
        await self._record(Event(kind="activation.dispatch.consulted", step_id=f"dispatch/{d.seq}/v{d.version}/consulted",
                                 actor=req.actor, at=now, payload={"seq": d.seq, "agree": req.agree, "opinion": req.opinion,
                                                                   "on_behalf": not sector, "note": req.note}))
        return self.view()

    @consult_dispatch.validator
    def _consult_ok(self, req: ConsultIn) -> None:
        self._refuse_if("consult", req)

    @workflow.update
    async def decide_dispatch(self, req: DispatchDecisionIn) -> ActivationView:
        """Emergency management approves (orders go out, the sector is informed) or returns the plan."""
        self._refuse_if("approve", req)
        d, now = next(x for x in self.s.dispatches if x.seq == req.seq), workflow.now()
        d.decided_by, d.decided_at, d.comments = req.actor, now, req.comments or None
        d.state = "approved" if req.decision == "approve" else "returned"
        await self._record(Event(kind=f"activation.dispatch.{'approved' if d.state == 'approved' else 'returned'}",
                                 step_id=f"dispatch/{d.seq}/v{d.version}/decided", actor=req.actor, at=now,
                                 payload={"seq": d.seq, "comments": req.comments, "forces": d.forces}))
        if d.state != "approved":
            return self.view()
        targets, gaps = [], []
        for fid in d.forces:
            f = self._force(fid)
            if f.post is not None:
                h = self.s.holders.get(f.post.key)
                t = self._target(f"force/{fid}", h, self.plan.dispatch.order_policy, priority=0, label=f.name_zh)
                if h and h.org_unit and h.org_unit not in self.s.units:
                    self.s.units.append(h.org_unit)
            else:
                t = Target(key=f"force/{fid}", tier="force", label=f.name_zh, policy=self.plan.dispatch.order_policy,
                           person=Contact(person_id=f"force:{fid}", name=f.contact_zh or f.name_zh, mobile=f.mobile),
                           others=self.s.duty, priority=0)
            if t is None:
                gaps.append(f"{f.name_zh}: nobody holds {f.post.key if f.post else fid}")
            else:
                targets.append(t)
        if gaps:
            await self._record(Event(kind="activation.gap", step_id=f"dispatch/{d.seq}/gap", at=now, payload={"gaps": gaps}))
        if targets:
            self._call("orders", str(d.seq), f"出动指令{d.seq}",
                       f"【出动指令】{self.info.incident_title}:{{label}}立即出动。任务:{d.task}" +
                       (f" 地点:{d.place}" if d.place else "") + "。", targets)
        sector = self.s.holders.get(self.plan.dispatch.sector.key)
        forces = "、".join(self._force(f).name_zh for f in d.forces)
        d.sector_informed_at = now
        await self._notify("activation.dispatch.sector_informed", f"dispatch/{d.seq}/sector_informed",
                           self._notices(f"sector/{d.seq}", sector.person,
                                         f"【力量调度报备】已下达出动指令:{forces}。任务:{d.task}。")
                           if sector and sector.person else [],
                           payload={"seq": d.seq, "sector": sector.label if sector else self.plan.dispatch.sector.key})
        return self.view()

    @decide_dispatch.validator
    def _decide_ok(self, req: DispatchDecisionIn) -> None:
        self._refuse_if("approve", req)

    def _force(self, fid: str):
        return next(f for f in self.plan.dispatch.forces if f.id == fid)

    # ------------------------------------------------------------- reinforcement from the city

    @workflow.update
    async def request_reinforcement(self, req: ReinforceIn) -> ActivationView:
        self._refuse_if("reinforce", req)
        now, rf = workflow.now(), self.plan.reinforcement
        r = ReinforcementRequest(seq=len(self.s.reinforcements) + 1, kind=req.kind, detail=req.detail,
                                 quantity=req.quantity, requested_by=req.actor, requested_at=now,
                                 due_at=now + rf.answer_within)
        self.s.reinforcements.append(r)
        await self._record(Event(kind="activation.reinforcement.requested", step_id=f"reinforcement/{r.seq}/requested",
                                 actor=req.actor, at=now, payload={"seq": r.seq, "kind": r.kind, "detail": r.detail,
                                                                   "quantity": r.quantity, "to": rf.to_zh,
                                                                   "due_at": r.due_at.isoformat()}))
        t = Target(key=f"city/{r.seq}", tier="city", label=rf.to_zh, policy=rf.request_policy, priority=0,
                   person=Contact(person_id="city:reinforcement", name=rf.to_zh, mobile=rf.mobile), others=self.s.duty)
        self._call("request", str(r.seq), f"增援请求{r.seq}",
                   f"【增援请求】青溪区{self.plan.name_zh}{level_zh(self.s.level)}响应({self.info.incident_title}):"
                   f"请求增援{KIND_ZH[r.kind]}——{r.detail}{('(' + r.quantity + ')') if r.quantity else ''}。"
                   f"请于{{due}}前答复。", [t], due=r.due_at)
        return self.view()

    @request_reinforcement.validator
    def _reinforce_ok(self, req: ReinforceIn) -> None:
        self._refuse_if("reinforce", req)

    @workflow.update
    async def answer_reinforcement(self, req: ReinforceAnswerIn) -> ActivationView:
        self._refuse_if("answer", req)
        r, now = next(x for x in self.s.reinforcements if x.seq == req.seq), workflow.now()
        r.state = "answered"
        r.answer = Answer(decision=req.decision, detail=req.detail, by_whom=req.by_whom, recorded_by=req.actor, at=now)
        r.late_by_s = _late_s(now, r.due_at)
        await self._record(Event(kind="activation.reinforcement.answered", step_id=f"reinforcement/{r.seq}/answered",
                                 actor=req.actor, at=now, payload={"seq": r.seq, "decision": req.decision,
                                                                   "detail": req.detail, "by_whom": req.by_whom,
                                                                   "late_by_s": r.late_by_s}))
        self._stop_episodes(f"request/{r.seq}", "已答复", exact=True, silent=True)
        self._stop_episodes(f"chase/{r.seq}", "市里已答复增援请求", exact=True)
        return self.view()

    @answer_reinforcement.validator
    def _answer_ok(self, req: ReinforceAnswerIn) -> None:
        self._refuse_if("answer", req)

    def _refuse_if(self, action: str, req: Actor) -> None:
        why = self.rules.refusal(action, req, workflow.now())
        if why is not None:
            raise ApplicationError(why[1], type=why[0], non_retryable=True)

    # ------------------------------------------------------------- escalation episodes (the shared interpreter)

    def _target(self, key: str, h: Holder | None, policy: str, priority: int, label: str) -> Target | None:
        if h is None or h.person is None:
            return None
        return Target(key=key, tier=key.split("/", 1)[0], position=h.position, org_unit=h.org_unit or "", label=label,
                      person=h.person, deputy=h.deputy, superior=h.superior, others=self.s.duty, policy=policy,
                      priority=priority)

    def _call(self, kind: EpisodeKind, ref: str, label: str, text: str, targets: list[Target],
              due: datetime | None = None, roles: dict[str, str] | None = None) -> None:
        name = f"{kind}/{ref}"
        policies = {t.policy: self.plan.policies[t.policy] for t in targets}
        esc = Escalation.start(f"{workflow.info().workflow_id}/{name}", policies, targets)
        ep = Episode(name=name, kind=kind, ref=ref, label=label, text=text, due_at=due, roles=roles or {}, esc=esc)
        self.s.episodes.append(ep)
        self._start(ep)

    def _start(self, ep: Episode) -> None:
        self.inboxes[ep.name] = Inbox()
        self.tasks[ep.name] = asyncio.create_task(self._drive(ep, self.inboxes[ep.name]))

    async def _drive(self, ep: Episode, inbox: Inbox) -> None:
        async def flush(actions: Actions) -> FlushResult:
            result = await self._flush(ep, actions)
            inbox.put(result.reports)
            return result

        await drive(ep.esc, inbox, flush, until=lambda: ep.stop is not None or self.pausing)
        if ep.stop is not None and not self.pausing:
            actions = ep.esc.cancel(workflow.now(), ep.stop)
            if ep.silent:
                actions.sends = []
            if actions:
                await flush(actions)
        ep.done = ep.esc.done
        self.changed = True

    async def _flush(self, ep: Episode, actions: Actions) -> FlushResult:
        for r in actions.records:  # the state first, so the read model written with this batch shows it
            self._on_record(ep, r)
        return await self._io("activation.flush", FlushRequest(
            record=self._request([]), episode=ep.name, kind=ep.kind, ref=ep.ref, label=ep.label, text=ep.text,
            due_at=ep.due_at, roles=ep.roles, sends=actions.sends, records=actions.records), result_type=FlushResult)

    def _on_record(self, ep: Episode, r: Record) -> None:
        if ep.kind == "notice":
            item = self._item(ep.ref)
            if r.kind == "ack" and item.acknowledged_at is None:
                self._acked(item, r.at, r.actor, r.channel)
            elif r.kind == "unreachable":
                item.unreachable = True
        elif ep.kind == "request" and r.kind == "ack":
            rq = next(x for x in self.s.reinforcements if str(x.seq) == ep.ref)
            rq.received_at = rq.received_at or r.at

    @workflow.signal(name="events")
    def events(self, batch: ShardEvents) -> None:
        """Acknowledgements and gateway reports, routed by api/services/answers like a call-out shard's."""
        self._deliver(batch)

    @workflow.update(name="answers")
    def answers(self, batch: ShardEvents) -> list[dict[str, Any]]:
        """The `events` signal, answering what became of each acknowledgement (taken, recorded late, a repeat),
        for the API to say so (api/services/answers)."""
        return self._deliver(batch)

    def _deliver(self, batch: ShardEvents) -> list[dict[str, Any]]:
        if not self.opened or self.pausing:  # applied once the episodes run (again)
            self.s.pending.acks.extend(batch.acks)
            self.s.pending.reports.extend(batch.reports)
            return [{"recorded": "taken", "late_by_s": None} for _ in batch.acks]
        for ep in self.s.episodes:
            if not ep.done and ep.name in self.inboxes:
                self.inboxes[ep.name].put([*batch.acks, *batch.reports])
        self.late.extend(batch.acks)  # an unreachable target's answer: still an acknowledgement (_late_acks)
        return record_late_answers(self.s.episodes, batch.acks, lambda ep: not ep.done and ep.name in self.inboxes,
                                          self._flush, self.tasks, unreachable_acks=True)

    # ------------------------------------------------------------- the end, and continue-as-new

    async def _finish(self) -> None:
        await workflow.wait_condition(workflow.all_handlers_finished)
        await asyncio.gather(*self.tasks.values())

    def _history_is_long(self) -> bool:
        info = workflow.info()
        return info.get_current_history_length() > self.inp.max_history or info.is_continue_as_new_suggested()

    async def _continue_as_new(self) -> None:
        self.pausing = True  # escalations stop where they are; their state travels in the input
        await workflow.wait_condition(lambda: workflow.all_handlers_finished() and all(t.done() for t in self.tasks.values()))
        for inbox in self.inboxes.values():
            for item in inbox.drain():
                bucket = self.s.pending.reports if isinstance(item, Report) else self.s.pending.acks
                if item not in bucket:
                    bucket.append(item)  # type: ignore[arg-type]
        self.s.pending.acks.extend(a for a in self.late if a not in self.s.pending.acks)  # late answers, not yet applied
        self.s.runs += 1
        workflow.continue_as_new(self.inp.model_copy(update={"state": self.s}))

    # ------------------------------------------------------------- queries and I/O

    @workflow.update
    async def opened_view(self) -> ActivationView:
        """Returns once the activation is recorded: the API answers `POST /api/activations` with it."""
        await workflow.wait_condition(lambda: self.opened)
        return self.view()

    @workflow.query
    def state(self) -> ActivationView:
        return self.view()

    def _item(self, item_id: str) -> Item:
        return next(i for i in self.s.items if i.id == item_id)

    def _episode(self, name: str) -> Episode | None:
        return next((e for e in self.s.episodes if e.name == name), None)

    def view(self) -> ActivationView:
        s, plan = self.s, self.plan
        convene = next((e for e in reversed(s.episodes) if e.kind == "convene"), None)
        seats = []
        for key, roles in self._seats(s.level).items():
            h = s.holders.get(key)
            ts = convene.esc.targets.get(key) if convene else None
            seats.append(SeatView(post=key, roles=roles, label=h.label if h else key,
                                  person_id=h.person.person_id if h and h.person else None,
                                  name=h.person.name if h and h.person else None, state=ts.state if ts else "nobody",
                                  acknowledged_at=ts.acknowledged_at if ts else None, acknowledged_by=ts.ack_by if ts else None,
                                  escalated=bool(ts and len(ts.recipients) > 1)))
        active = plan.level(s.level).groups
        groups = []
        for g in plan.groups:
            h = s.holders.get(g.lead.key)
            ts = convene.esc.targets.get(g.lead.key) if convene and g.id in active else None
            groups.append(GroupView(id=g.id, name_zh=g.name_zh, active=g.id in active, lead=h.label if h else g.lead.key,
                                    lead_person_id=h.person.person_id if h and h.person else None,
                                    lead_state=ts.state if ts else None,
                                    members=[(s.holders[m.key].label if m.key in s.holders else m.key) for m in g.members],
                                    tasks=[i.id for i in s.items if i.group == g.id and i.kind == "task"]))
        dispatches = []
        for d in s.dispatches:
            ep = self._episode(f"orders/{d.seq}") if d.state == "approved" else None
            orders = []
            for fid in d.forces if ep else []:
                ts = ep.esc.targets.get(f"force/{fid}") if ep else None
                orders.append(OrderView(force=fid, name_zh=self._force(fid).name_zh,
                                        person_id=ts.target.person.person_id if ts else None,
                                        state=ts.state if ts else "nobody", acknowledged_at=ts.acknowledged_at if ts else None))
            dispatches.append(DispatchView(**d.model_dump(), orders=orders))
        lv = plan.level(s.level)
        return ActivationView(
            activation_id=self.info.activation_id, workflow_id=workflow.info().workflow_id,
            subject=subject_of(self.info.activation_id), incident_id=self.info.incident_id,
            incident_title=self.info.incident_title, plan_id=plan.id, plan_name=plan.name_zh,
            plan_version=self.inp.plan_version, level=s.level, level_name=lv.name_zh or level_zh(s.level),
            status="terminated" if s.terminated_at else "active", reason=self.info.reason,
            activated_by=self.info.activated_by, activated_at=s.activated_at, levels=s.levels,
            commanders=[x for x in seats if {"指挥长", "副指挥长"} & set(x.roles)], seats=seats, groups=groups,
            tasks=[i for i in s.items if i.kind == "task"], directives=[i for i in s.items if i.kind == "directive"],
            dispatches=dispatches, reinforcements=s.reinforcements, gaps=s.gaps, units=sorted(s.units),
            terminated_at=s.terminated_at, terminated_by=s.terminated_by, termination_reason=s.termination_reason,
            review_workflow_id=s.review_workflow_id, runs=s.runs)

    def _opening(self) -> dict:
        lv = self.plan.level(self.s.level)
        return {**self.info.model_dump(mode="json", exclude={"activated_by"}), "plan": self.plan.id,
                "plan_name": self.plan.name_zh, "plan_version": self.inp.plan_version, "level_name": lv.name_zh,
                "start_condition": lv.start_condition_zh,
                "commander": self.s.holders[lv.commander.key].label if lv.commander.key in self.s.holders else None}

    async def _resolve(self) -> None:
        found = await self._lookup()
        self.s.holders, self.s.duty, self.s.gaps = found.holders, found.duty, found.gaps

    async def _lookup(self, units: list[str] | None = None, seasons: list[Season] | None = None) -> ResolveResult:
        found: ResolveResult = await workflow.execute_activity(
            "activation.resolve", ResolveRequest(plan=self.plan, town_id=self.info.town_id, units=units or [],
                                                 seasons=seasons or [], at=workflow.now()),
            result_type=ResolveResult, **ACTIVITY)
        if found.duty:
            self.s.duty = found.duty  # who is on duty now: escalations started from here on reach them
        return found

    def _notices(self, key: str, c: Contact, text: str, due: datetime | None = None) -> list[Notice]:
        out = []
        for ch in self.plan.channels:
            to = c.address(ch.value)
            if to:
                out.append(Notice(key=f"{workflow.info().workflow_id}/{key}/{c.person_id}/{ch.value}", person_id=c.person_id,
                                  name=c.name, channel=ch.value, to=to, text=text, due_at=due))
        return out

    async def _notify(self, kind: str, step_id: str, notices: list[Notice], payload: dict) -> None:
        await self._io("activation.notify", lambda: NotifyRequest(record=self._request([]), kind=kind, step_id=step_id,
                                                                  notices=notices, payload=payload))

    def _request(self, events: list[Event]) -> RecordRequest:
        return RecordRequest(workflow_id=workflow.info().workflow_id, run_id=workflow.info().run_id, info=self.info,
                             plan_id=self.plan.id, plan_version=self.inp.plan_version, events=events, view=self.view())

    async def _record(self, *events: Event) -> None:
        await self._io("activation.record", lambda: self._request(list(events)))

    async def _io(self, activity: str, arg, result_type: type | None = None):
        """Every write goes through here, one at a time, each with the activation's latest state for the read model."""
        async with self.io:
            req = arg() if callable(arg) else arg
            if isinstance(req, (NotifyRequest, FlushRequest)):
                req.record = self._request(req.record.events)
            result = await workflow.execute_activity(activity, req, result_type=result_type, **ACTIVITY)
            self.changed = True  # the main loop looks again: new timers, the end, a long history
            return result
