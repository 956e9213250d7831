"""Response proposal 响应建议 (预警和响应一体化), one workflow per warning and response plan.

A warning that is a plan's start condition (definitions/plans/ `on_warnings`: 暴雨橙色预警 is the flood plan's
Ⅳ级 condition) proposes that level to the leading leader on duty 带班领导, by SMS and IM with a signed link
(api/services/proposals.py starts it from the warning's intake). One tap accepts: an incident is received from
the warning (its call-out related) and the plan activated through the usual start path, linked to the warning
and this proposal; or the leader declines with a reason. Unanswered, the shared escalation interpreter follows
the plan's `proposal.policy` (a voice call, then the duty chief told and the district head called). The warning
cancelled, or expired, withdraws the proposal and whoever was reached is told.

Audit subject `proposal/<warning id>-<plan id>` (workflows/subjects.py); workflow id `proposal-<same>`.
"""
from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, Field
from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from definitions.schema.escalation import Policy
    from definitions.schema.reporting import Severity
    from workflows.callout import ShardEvents
    from workflows.common import ACTIVITY, CONFLICT, FORBIDDEN, Actor, Event
    from workflows.escalation import Actions, Contact, Escalation, FlushResult, Inbox, Record, Send, Target, drive
    from workflows.kit.events import Proposal as Kinds
    from workflows.kit.names import Proposal as Names
    from workflows.kit.roles import may_not, role_name
    from workflows.subjects import proposal_subject

Status = Literal["opening", "proposed", "accepted", "declined", "expired"]
STATUS_ZH = {"opening": "发送中", "proposed": "待决定", "accepted": "已同意", "declined": "未同意", "expired": "已撤回"}
LEVEL_ZH = {"I": "Ⅰ级", "II": "Ⅱ级", "III": "Ⅲ级", "IV": "Ⅳ级"}
WARNING_ZH = {"blue": "蓝色", "yellow": "黄色", "orange": "橙色", "red": "红色"}


class WarningRef(BaseModel):
    """The warning the proposal follows, as intake stored it."""

    warning_id: str
    identifier: str = ""
    level: str
    event: str = ""
    headline: str = ""
    description: str = ""
    area_descs: list[str] = Field(default_factory=list)
    town_ids: list[str] = Field(default_factory=list)
    callout_id: str | None = None
    expires_at: datetime | None = None


class ProposalInput(BaseModel):
    proposal_id: str
    warning: WarningRef
    plan_id: str
    plan_name: str
    plan_version: str = ""
    level: Severity
    level_name: str = ""
    start_condition: str = ""
    activate_roles: list[str] = Field(default_factory=list, description="roles the plan lets activate at the level")
    policy: Policy
    lapse_after: timedelta = timedelta(hours=24)
    started_by: str = "system"


class OpenRequest(BaseModel):
    proposal_id: str
    workflow_id: str
    warning_id: str
    callout_id: str | None = None
    plan_id: str
    plan_name: str
    level: str
    positions: list[str] = Field(default_factory=list, description="position:<code> recipients of the policy")


class Opened(BaseModel):
    leader: Contact | None = None
    others: dict[str, Contact] = Field(default_factory=dict, description="duty roles and position:<code> holders")


class DecideIn(Actor):
    via: Literal["console", "link", "api"] = "api"


class DeclineIn(DecideIn):
    reason: str = Field(min_length=1, max_length=2000, description="why not (required)")


class ProposalView(BaseModel):
    proposal_id: str
    workflow_id: str = ""
    status: Status = "opening"
    warning: WarningRef
    plan_id: str
    plan_name: str
    level: Severity
    level_name: str = ""
    start_condition: str = ""
    activate_roles: list[str] = Field(default_factory=list)
    leader: Contact | None = None
    proposed_at: datetime | None = None
    expires_at: datetime | None = None
    escalated_at: datetime | None = None
    reached: list[str] = Field(default_factory=list, description="persons a message of the proposal went to")
    decided_by: str | None = None
    decided_role: str | None = None
    decided_via: str | None = None
    decided_at: datetime | None = None
    reason: str | None = None
    incident_id: str | None = None
    activation_id: str | None = None
    call_state: str | None = None


class RaiseIn(BaseModel):
    """A higher level the warning now meets (its Update): the rule met, as intake found it."""

    level: Severity
    level_name: str = ""
    start_condition: str = ""
    activate_roles: list[str] = Field(default_factory=list)
    warning_level: str
    headline: str = ""


class ActivateRequest(BaseModel):
    proposal_id: str
    warning: WarningRef
    plan_id: str
    level: Severity
    actor: str
    role: str
    reason: str


class ActivateResult(BaseModel):
    incident_id: str
    activation_id: str


class RecordRequest(BaseModel):
    workflow_id: str
    run_id: str
    events: list[Event]
    view: ProposalView


class ProposalFlush(BaseModel):
    subject: str
    workflow_id: str
    run_id: str
    episode: str = "propose"
    view: ProposalView
    sends: list[Send] = Field(default_factory=list)
    records: list[Record] = Field(default_factory=list)


def refusal(v: ProposalView, req: Actor) -> tuple[str, str] | None:
    """Why this caller may not accept or decline the proposal now: (forbidden | conflict, reason); None if allowed.
    The leading leader on duty (the one it was sent to) decides; so may a role the plan lets activate at the
    level (the leading leader role only as the one on duty)."""
    if v.status == "opening":
        return CONFLICT, "响应建议正在发出,请稍候 / the proposal is being sent; try again in a moment"
    if v.status != "proposed":
        return CONFLICT, (f"该响应建议{STATUS_ZH[v.status]},不能再处理 / the proposal is {v.status}; "
                          "nothing more can be decided")
    if req.role == "admin":
        return None
    if req.role == "leading_leader":
        if v.leader is not None and req.actor != v.leader.person_id:
            return FORBIDDEN, (f"只有当班带班领导{v.leader.name}可以处理此响应建议 / only the leading leader on duty "
                               f"({v.leader.name}) decides this proposal")
        return None
    allowed = [r for r in v.activate_roles if r != "leading_leader"]
    if req.role not in allowed:
        return FORBIDDEN, may_not(req.role, "处理此响应建议", "decide this response proposal",
                                  ["leading_leader", *allowed])
    return None


@workflow.defn
class ResponseProposalWorkflow:
    @workflow.init
    def __init__(self, inp: ProposalInput) -> None:
        self.inp = inp
        self.v = ProposalView(proposal_id=inp.proposal_id, warning=inp.warning, plan_id=inp.plan_id,
                              plan_name=inp.plan_name, level=inp.level, level_name=inp.level_name,
                              start_condition=inp.start_condition, activate_roles=inp.activate_roles)
        self.inbox = Inbox()
        self.esc: Escalation | None = None
        self.io = asyncio.Lock()
        self.deciding = False  # an acceptance is starting the activation: every other decision waits its answer
        self.withdraw_reason: str | None = None
        self.lapsed = False
        self.raised: RaiseIn | None = None
        self.episode = "propose"

    @workflow.run
    async def run(self, inp: ProposalInput) -> ProposalView:
        v, wid = self.v, workflow.info().workflow_id
        v.workflow_id = wid
        opened: Opened = await workflow.execute_activity(
            Names.OPEN, OpenRequest(proposal_id=inp.proposal_id, workflow_id=wid, warning_id=inp.warning.warning_id,
                                    callout_id=inp.warning.callout_id, plan_id=inp.plan_id, plan_name=inp.plan_name,
                                    level=inp.level.value, positions=sorted(inp.policy.positions())),
            result_type=Opened, **ACTIVITY)
        now = workflow.now()
        v.leader, v.status, v.proposed_at = opened.leader, "proposed", now
        ends = now + inp.lapse_after
        if inp.warning.expires_at is not None:
            ends = min(ends, max(inp.warning.expires_at, now))
        v.expires_at = ends
        await self._record(Event(kind=Kinds.MADE, step_id="made", actor=inp.started_by, at=now, payload={
            "warning_id": inp.warning.warning_id, "callout_id": inp.warning.callout_id, "plan": inp.plan_id,
            "plan_name": inp.plan_name, "level": inp.level.value, "level_name": inp.level_name,
            "warning_level": inp.warning.level, "event": inp.warning.event, "headline": inp.warning.headline,
            "leader": _who(opened.leader), "expires_at": ends.isoformat(), "plan_version": inp.plan_version}))
        timer = asyncio.ensure_future(self._lapse(ends))
        person = opened.leader or opened.others.get("duty_chief")
        rounds = 0
        while True:
            if person is not None:
                target = Target(key="leader", tier="proposal", position="leading_leader", label=f"带班领导{person.name}",
                                person=person, others=opened.others, policy="proposal", priority=0)
                self.episode = "propose" + (f"-{rounds}" if rounds else "")  # a raised proposal asks again: its own
                self.esc = Escalation.start(f"{wid}/{self.episode}", {"proposal": inp.policy}, [target])
                await drive(self.esc, self.inbox, self._flush, until=lambda: self._settled() or self.raised is not None)
            # unanswered: the proposal stands until decided or withdrawn (or raised by the warning's update)
            await workflow.wait_condition(lambda: self._settled() or (self.raised is not None and not self.deciding))
            if self.raised is None or self._settled():
                break
            rounds += 1
            await self._raise(self.raised)  # the leader is asked again, for the higher level
        if v.status == "proposed":  # the warning cancelled, or it expired (or the proposal stood its longest)
            expired = inp.warning.expires_at is not None and inp.warning.expires_at <= ends
            await self._withdraw(self.withdraw_reason or ("expired" if expired else "lapsed"))
        timer.cancel()
        if self.esc is not None and any(ts.sends_total for ts in self.esc.targets.values()):
            why = {"accepted": "已同意", "declined": "未同意"}.get(v.status, "撤回")
            actions = self.esc.cancel(workflow.now(), why)
            if actions:
                await self._flush(actions)
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self._view()

    def _settled(self) -> bool:
        return (self.v.status not in ("opening", "proposed") or self.withdraw_reason is not None or self.lapsed) \
            and not self.deciding

    async def _lapse(self, at: datetime) -> None:
        await workflow.sleep(max(at - workflow.now(), timedelta(0)))
        self.lapsed = True

    async def _raise(self, r: "RaiseIn") -> None:
        v = self.v
        self.raised = None
        before = v.level.value
        v.level, v.level_name, v.start_condition, v.activate_roles = r.level, r.level_name, r.start_condition, r.activate_roles
        v.warning = v.warning.model_copy(update={"level": r.warning_level, "headline": r.headline or v.warning.headline})
        await self._record(Event(kind=Kinds.RAISED, step_id=f"raised/{r.level.value}", at=workflow.now(), payload={
            "from_level": before, "to_level": r.level.value, "level_name": r.level_name,
            "warning_level": r.warning_level, "headline": r.headline, "warning_id": v.warning.warning_id}))

    async def _withdraw(self, reason: str) -> None:
        v = self.v
        v.status, v.reason = "expired", reason
        await self._record(Event(kind=Kinds.EXPIRED, step_id="expired", at=workflow.now(), payload={
            "reason": reason, "warning_id": v.warning.warning_id, "reached": list(v.reached),
            "level": v.level.value, "plan": v.plan_id}))

    # ------------------------------------------------------------- decisions

    @workflow.update
    async def accept(self, req: DecideIn) -> ProposalView:
        self._refuse_if(req)
        v = self.v
        self.deciding = True
        reason = (f"{WARNING_ZH.get(v.warning.level, v.warning.level)}{v.warning.event}预警已发布"
                  f"({v.warning.headline or v.warning.identifier}),符合《{v.plan_name}》{LEVEL_ZH[v.level.value]}启动条件;"
                  f"{role_name(req.role)}同意响应建议")
        try:
            done: ActivateResult = await workflow.execute_activity(
                Names.ACTIVATE, ActivateRequest(proposal_id=v.proposal_id, warning=v.warning, plan_id=v.plan_id,
                                                level=v.level, actor=req.actor, role=req.role, reason=reason),
                result_type=ActivateResult, **ACTIVITY)
        except ActivityError as exc:  # the activation's own refusal (its role or person check): said as it is
            self.deciding = False
            cause = exc.cause if isinstance(exc.cause, ApplicationError) else None
            raise ApplicationError(cause.message if cause else str(exc), type=cause.type if cause else CONFLICT,
                                   non_retryable=True) from exc
        now = workflow.now()
        v.status, v.decided_by, v.decided_role, v.decided_via, v.decided_at = "accepted", req.actor, req.role, req.via, now
        v.incident_id, v.activation_id = done.incident_id, done.activation_id
        await self._record(Event(kind=Kinds.ACCEPTED, step_id="accepted", actor=req.actor, channel=req.via, at=now,
                                 payload={"decision": "accept", "role": req.role, "via": req.via,
                                          "warning_id": v.warning.warning_id, "plan": v.plan_id, "level": v.level.value,
                                          "incident_id": done.incident_id, "activation_id": done.activation_id}))
        self.deciding = False
        return self._view()

    @accept.validator
    def _accept_ok(self, req: DecideIn) -> None:
        self._refuse_if(req)

    @workflow.update
    async def decline(self, req: DeclineIn) -> ProposalView:
        self._refuse_if(req)
        v, now = self.v, workflow.now()
        v.status, v.decided_by, v.decided_role, v.decided_via, v.decided_at = "declined", req.actor, req.role, req.via, now
        v.reason = req.reason
        await self._record(Event(kind=Kinds.DECLINED, step_id="declined", actor=req.actor, channel=req.via, at=now,
                                 payload={"decision": "reject", "reason": req.reason, "role": req.role, "via": req.via,
                                          "warning_id": v.warning.warning_id, "plan": v.plan_id,
                                          "level": v.level.value}))
        return self._view()

    @decline.validator
    def _decline_ok(self, req: DeclineIn) -> None:
        self._refuse_if(req)

    def _refuse_if(self, req: Actor) -> None:
        if self.deciding:
            raise ApplicationError("响应建议正在处理中 / the proposal is being decided", type=CONFLICT,
                                   non_retryable=True)
        why = refusal(self.v, req)
        if why is not None:
            raise ApplicationError(why[1], type=why[0], non_retryable=True)

    @workflow.signal
    def raise_level(self, r: "RaiseIn") -> None:
        """The warning was raised (a CAP Update, orange → red): a higher level's start condition is met. An open
        proposal is raised and the leader asked again; a lower or equal level, or a decided proposal, is left."""
        if self.v.status in ("opening", "proposed") and r.level.rank > self.v.level.rank and (
                self.raised is None or r.level.rank > self.raised.level.rank):
            self.raised = r

    @workflow.signal
    def withdraw(self, reason: str) -> None:
        """The warning was cancelled (a CAP Cancel): the proposal is withdrawn unless decided already."""
        if self.withdraw_reason is None:
            self.withdraw_reason = reason

    @workflow.signal(name="events")
    def events(self, batch: ShardEvents) -> None:
        """Gateway reports on the proposal's messages (failed sends end a wait early)."""
        self.inbox.put(list(batch.reports))

    @workflow.query
    def state(self) -> ProposalView:
        return self._view()

    @workflow.update
    async def opened_view(self) -> ProposalView:
        """Returns once the proposal is stored and sent for the first time."""
        await workflow.wait_condition(lambda: self.v.status != "opening")
        return self._view()

    # ------------------------------------------------------------- I/O

    def _view(self) -> ProposalView:
        ts = self.esc.targets.get("leader") if self.esc else None
        return self.v.model_copy(update={"call_state": ts.state if ts else None})

    async def _flush(self, actions: Actions) -> FlushResult:
        v = self.v
        for r in actions.records:
            if r.kind == "escalated" and v.escalated_at is None:
                v.escalated_at = r.at
        for s in actions.sends:
            if s.person_id not in v.reached:
                v.reached.append(s.person_id)
        async with self.io:
            result: FlushResult = await workflow.execute_activity(
                Names.FLUSH, ProposalFlush(subject=proposal_subject(v.proposal_id), workflow_id=workflow.info().workflow_id,
                                           run_id=workflow.info().run_id, episode=self.episode, view=self._view(),
                                           sends=actions.sends,
                                           records=actions.records), result_type=FlushResult, **ACTIVITY)
        self.inbox.put(result.reports)
        return result

    async def _record(self, *events: Event) -> None:
        async with self.io:
            await workflow.execute_activity(
                Names.RECORD, RecordRequest(workflow_id=workflow.info().workflow_id, run_id=workflow.info().run_id,
                                            events=list(events), view=self._view()), **ACTIVITY)


def _who(c: Contact | None) -> dict[str, Any] | None:
    return {"person_id": c.person_id, "name": c.name} if c else None
