"""Incident reporting chain 信息报送 (seed 001 §三(二)2), one workflow per incident.

From 接报 (the moment the duty office learns of an incident): a verbal report
within the rules' time (30 min in the district), a written report within its
time (1 h): drafted by the duty cadre, reviewed by the leading leader (approve,
or return with comments → redraft), then submitted to every recipient through
the gateway, each confirming receipt. Then follow-ups 续报一, 续报二 … each due a
rule-given interval after the previous one, until the final report 终报 closes
the chain. Before each deadline a reminder; at expiry an escalation (the shared
interpreter: duty chief, then leading leader) and, when the report comes, a
permanent late mark saying by how much. Facts that reach a trigger (a death →
the sector's district leader to the scene) start a call-out with acknowledgement.

People act through updates whose validators enforce the procedure: who may do
a step, and in which order. Every step is written to the audit chain.
"""
from __future__ import annotations

import asyncio
import math
from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, Field
from temporalio import workflow
from temporalio.exceptions import ApplicationError

from workflows.common import ACTIVITY, CONFLICT, FORBIDDEN, INVALID, Actor, Event

with workflow.unsafe.imports_passed_through():
    from definitions.schema.reporting import Casualties, ReportingRules, Severity
    from workflows.callout import ShardEvents
    from workflows.escalation import Actions, Escalation, FlushResult, Inbox, Record, Report, Send, Target, drive
    from workflows.escalation import record_late_answers

SOURCES = ("110", "119", "120", "12345", "department", "town", "field", "media")
ReportKind = Literal["written", "followup", "final"]


# ----------------------------------------------------------------- messages


class IncidentInfo(BaseModel):
    incident_id: str
    title: str
    received_at: datetime | None = Field(default=None, description="接报时间; None: when the workflow starts")
    source: str
    category: str
    subtype: str = ""
    severity: Severity | None = None
    town_id: str | None = None
    place: str = ""
    summary: str = ""
    casualties: Casualties = Field(default_factory=Casualties)
    reporting_unit: str = ""
    reporting_unit_id: str | None = None
    reporter: str = ""
    reporter_phone: str | None = None
    related: list[str] = Field(default_factory=list, description="audit subjects it follows from (a warning's call-out)")
    created_by: str = "system"


class Deadline(BaseModel):
    key: str
    kind: Literal["verbal", "written", "followup"]
    label: str
    due_at: datetime
    remind_at: datetime
    reminded_at: datetime | None = None
    overdue_at: datetime | None = None
    met_at: datetime | None = None
    met_by: str | None = None
    late_by_s: int | None = None


class Draft(BaseModel):
    """A written report's content: facts fast, causes with care (快报事实、慎报原因)."""

    occurred_at: datetime | None = Field(default=None, description="时间")
    place: str = Field(min_length=1, max_length=500, description="地点")
    what_happened: str = Field(min_length=1, max_length=10000, description="事件经过")
    casualties: Casualties = Field(default_factory=Casualties, description="伤亡")
    measures: str = Field(min_length=1, max_length=10000, description="已采取的措施")
    trend: str = Field(default="", max_length=5000, description="发展趋势")
    next_steps: str = Field(default="", max_length=5000, description="下一步工作")
    cause: str | None = Field(default=None, max_length=5000, description="原因(可暂缺,慎报)")
    severity: Severity | None = None


class Version(BaseModel):
    version: int
    content: Draft
    by: str
    at: datetime
    decision: Literal["approve", "return"] | None = None
    reviewed_by: str | None = None
    reviewed_at: datetime | None = None
    comments: str | None = None


class WrittenReport(BaseModel):
    seq: int
    kind: ReportKind
    label: str
    deadline_key: str
    state: Literal["in_review", "returned", "approved", "submitted"] = "in_review"
    versions: list[Version] = Field(default_factory=list)
    approved_by: str | None = None
    approved_at: datetime | None = None
    submitted_by: str | None = None
    submitted_at: datetime | None = None

    @property
    def latest(self) -> Version:
        return self.versions[-1]


class VerbalRecord(BaseModel):
    to_whom: str
    by_whom: str
    at: datetime
    channel: str = "phone"
    note: str | None = None
    recorded_by: str


class Episode(BaseModel):
    """One run of the escalation interpreter: an overdue deadline, a report's receipts, a trigger's call."""

    name: str
    kind: Literal["overdue", "receipts", "trigger"]
    ref: str
    label: str
    text: str = ""
    esc: Escalation
    stop: str | None = None
    done: bool = False


class ChainState(BaseModel):
    received_at: datetime
    severity: Severity
    casualties: Casualties
    deadlines: list[Deadline]
    verbal: VerbalRecord | None = None
    reports: list[WrittenReport] = Field(default_factory=list)
    episodes: list[Episode] = Field(default_factory=list)
    fired: list[str] = Field(default_factory=list)
    closed_at: datetime | None = None
    pending: ShardEvents = Field(default_factory=ShardEvents)
    runs: int = 1


class ReportingInput(BaseModel):
    incident: IncidentInfo
    rules: ReportingRules
    rules_version: str
    max_history: int = Field(default=8000, description="continue as new past this many history events")
    state: ChainState | None = None


class VerbalIn(Actor):
    to_whom: str = Field(min_length=1, max_length=200, description="e.g. 区政府总值班室 张三")
    by_whom: str = Field(min_length=1, max_length=200)
    at: datetime | None = None
    channel: str = Field(default="phone", max_length=50)
    note: str | None = Field(default=None, max_length=2000)


class DraftIn(Actor):
    draft: Draft


class ReviewIn(Actor):
    decision: Literal["approve", "return"]
    comments: str = Field(default="", max_length=5000)
    version: int | None = Field(default=None, description="the version reviewed; refused if a newer one exists")


class SubmitIn(Actor):
    pass


class TriggerView(BaseModel):
    id: str
    label: str
    state: str
    acknowledged_by: str | None = None
    acknowledged_at: datetime | None = None


class ChainView(BaseModel):
    incident_id: str
    workflow_id: str
    status: Literal["open", "closed"]
    received_at: datetime
    severity: Severity
    casualties: Casualties
    deadlines: list[Deadline]
    verbal: VerbalRecord | None
    reports: list[WrittenReport]
    triggers: list[TriggerView]
    closed_at: datetime | None
    runs: int


class RecordRequest(BaseModel):
    workflow_id: str
    run_id: str
    incident: IncidentInfo
    rules_id: str
    rules_version: str
    events: list[Event]
    view: ChainView


class RemindRequest(BaseModel):
    record: RecordRequest
    deadline: Deadline
    roles: list[str]


class TargetsRequest(BaseModel):
    purpose: Literal["overdue", "receipts", "trigger"]
    incident: IncidentInfo
    rules: ReportingRules
    call: str = ""
    policy: str


class TargetsResult(BaseModel):
    targets: list[Target]
    gaps: list[str] = Field(default_factory=list)


class FlushRequest(BaseModel):
    record: RecordRequest
    episode: str
    kind: str
    ref: str
    label: str
    text: str
    report: WrittenReport | None = None
    due_at: datetime | None = None
    sends: list[Send]
    records: list[Record]


# ----------------------------------------------------------------- the procedure's rules of order

ZH_DIGITS = "零一二三四五六七八九"


def zh_number(n: int) -> str:
    if n < 10:
        return ZH_DIGITS[n]
    tens, ones = divmod(n, 10)
    return (ZH_DIGITS[tens] if tens > 1 else "") + "十" + (ZH_DIGITS[ones] if ones else "")


def label_of(kind: str, seq: int) -> str:
    return {"written": "书面报告", "final": "终报"}.get(kind) or f"续报{zh_number(seq)}"


STATE_ZH = {"in_review": "待审核", "returned": "已退回修改", "approved": "已审核通过", "submitted": "已报送"}
ROLE_OF = {"verbal": "verbal", "draft": "draft", "followup": "draft", "final": "draft", "review": "review",
           "submit": "submit"}


def refusal(s: ChainState, rules: ReportingRules, action: str, req: Actor, now: datetime) -> tuple[str, str] | None:
    """Why the procedure refuses this step now, as (forbidden | conflict | invalid, reason); None if allowed."""
    allowed = getattr(rules.roles, ROLE_OF[action])
    if req.role not in allowed:
        return FORBIDDEN, f"role {req.role!r} may not {action.replace('_', ' ')} here; allowed: {', '.join(allowed)}"
    if s.closed_at is not None:
        return CONFLICT, f"the chain was closed by the final report 终报 at {s.closed_at.isoformat()}; nothing more is reported"
    r = s.reports[-1] if s.reports else None
    if action == "verbal":
        assert isinstance(req, VerbalIn)
        if s.verbal is not None:
            return CONFLICT, f"the verbal report was recorded already (at {s.verbal.at.isoformat()} to {s.verbal.to_whom})"
        if req.at is not None and req.at > now + timedelta(minutes=1):
            return INVALID, "at: the verbal report cannot be in the future"
        if req.at is not None and req.at < s.received_at:
            return INVALID, f"at: before the incident was received ({s.received_at.isoformat()})"
    elif action == "draft" and r is not None:
        if r.state == "in_review":
            return CONFLICT, f"{r.label} v{r.latest.version} is with the reviewer; it can be redrafted once returned"
        if r.state == "approved":
            return CONFLICT, f"{r.label} was approved and cannot be edited: submit it, then report new facts in a follow-up 续报"
        if r.state == "submitted":
            return CONFLICT, f"{r.label} was submitted; report new facts as a follow-up (/followups) or the final report (/final)"
    elif action in ("followup", "final") and (r is None or r.state != "submitted"):
        what = "the written report" if r is None else f"{r.label} ({STATE_ZH[r.state]})"
        return CONFLICT, f"{what} must be submitted before a {'follow-up 续报' if action == 'followup' else 'final report 终报'}"
    elif action == "review":
        assert isinstance(req, ReviewIn)
        if r is None:
            return CONFLICT, "there is no draft to review"
        if r.state != "in_review":
            return CONFLICT, f"{r.label} is {r.state} ({STATE_ZH[r.state]}): only a draft awaiting review can be approved or returned"
        if req.version is not None and req.version != r.latest.version:
            return CONFLICT, f"version {req.version} is not the latest draft of {r.label} (v{r.latest.version})"
        if req.actor == r.latest.by:
            return FORBIDDEN, "the drafter cannot review their own draft"
        if req.decision == "return" and not req.comments.strip():
            return INVALID, "comments: say what to change when returning a draft"
    elif action == "submit":
        if r is None:
            return CONFLICT, "nothing to submit: draft the written report first"
        if r.state == "returned":
            return CONFLICT, (f"{r.label} v{r.latest.version} was returned with comments ({r.latest.comments}); "
                              "redraft it and have it approved before submitting")
        if r.state == "in_review":
            return CONFLICT, f"{r.label} v{r.latest.version} has not been approved yet"
        if r.state == "submitted":
            return CONFLICT, f"{r.label} was submitted already at {r.submitted_at.isoformat() if r.submitted_at else '?'}"
    return None


# ----------------------------------------------------------------- the workflow


@workflow.defn
class IncidentReportingWorkflow:
    @workflow.init
    def __init__(self, inp: ReportingInput) -> None:
        self.inp, self.rules, self.info = inp, inp.rules, inp.incident
        if inp.state is not None:
            self.s = inp.state
        else:
            received = inp.incident.received_at or workflow.now()
            self.info = inp.incident.model_copy(update={"received_at": received})
            severity = self.rules.grade(inp.incident.severity, inp.incident.casualties)
            limits = self.rules.deadlines_for(inp.incident.category, inp.incident.subtype, severity, inp.incident.casualties)
            self.s = ChainState(received_at=received, severity=severity, casualties=inp.incident.casualties, deadlines=[
                self._deadline("verbal", "verbal", "口头报告", received + limits.verbal),
                self._deadline("written", "written", "书面报告", received + limits.written)])
        self.inboxes: dict[str, Inbox] = {}
        self.tasks: dict[str, asyncio.Task] = {}
        self.io = asyncio.Lock()
        self.changed = self.pausing = self.opened = False

    @workflow.run
    async def run(self, inp: ReportingInput) -> ChainView:
        if inp.state is None:
            await self._record(Event(kind="incident.received", step_id="received", actor=self.info.created_by,
                                     at=self.s.received_at, payload=self._opening()))
            await self._check_triggers()
        else:
            await self._record(Event(kind="incident.continued", step_id=f"continued/{self.s.runs}", at=workflow.now(),
                                     payload={"run": self.s.runs}))
        self.opened = True
        for ep in self.s.episodes:
            if not ep.done:
                self._start(ep)
        self._deliver(self.s.pending)
        self.s.pending = ShardEvents()

        while self.s.closed_at is None:
            await self._deadlines_due()
            if self._history_is_long():
                await self._continue_as_new()
            await self._sleep_until_next_deadline()
        await self._finish()
        await asyncio.gather(*self.tasks.values())  # late answers that came while it closed
        return self.view()

    # ------------------------------------------------------------- deadlines

    async def _deadlines_due(self) -> None:
        for d in self.s.deadlines:
            now = workflow.now()
            if d.met_at is not None:
                continue
            if d.reminded_at is None and now >= d.remind_at:
                d.reminded_at = now
                if now < d.due_at:  # a reminder after the deadline would only be noise
                    await self._io("reporting.remind", RemindRequest(record=self._request([]), deadline=d,
                                                                     roles=self.rules.remind))
            if d.overdue_at is None and now >= d.due_at:
                d.overdue_at = now
                await self._overdue(d)

    async def _overdue(self, d: Deadline) -> None:
        await self._record(Event(kind=f"report.{d.kind}.overdue", step_id=f"deadline/{d.key}/overdue", at=d.due_at,
                                 payload={"deadline": d.key, "label": d.label, "due_at": d.due_at.isoformat()}))
        await self._escalate("overdue", d.key, d.label, self.rules.overdue_policy, "duty_chief",
                             text=f"{self.info.title}:{d.label}时限已过,尚未报出。")

    def _meet(self, key: str, at: datetime, by: str, kind: str, actor: str) -> list[Event]:
        """A deadline is met: the time it took, and a permanent late mark if it was late."""
        d = next(d for d in self.s.deadlines if d.key == key)
        d.met_at, d.met_by, d.late_by_s = at, by, max(0, math.ceil((at - d.due_at).total_seconds()))
        for ep in self.s.episodes:
            if ep.kind == "overdue" and ep.ref == key and not ep.done:
                ep.stop = f"{by}已报出"
        self.changed = True
        if not d.late_by_s:
            return []
        minutes = -(-d.late_by_s // 60)
        return [Event(kind=f"report.{kind}.late", step_id=f"deadline/{key}/late", actor=actor, at=at,
                      payload={"deadline": key, "label": d.label, "met_by": by, "due_at": d.due_at.isoformat(),
                               "met_at": at.isoformat(), "late_by_s": d.late_by_s, "late_by_min": minutes,
                               "mark": f"迟报{minutes}分钟"})]

    # ------------------------------------------------------------- the verbal report

    @workflow.update
    async def verbal(self, req: VerbalIn) -> ChainView:
        self._refuse_if("verbal", req)
        at = req.at or workflow.now()
        self.s.verbal = VerbalRecord(to_whom=req.to_whom, by_whom=req.by_whom, at=at, channel=req.channel,
                                     note=req.note, recorded_by=req.actor)
        late = self._meet("verbal", at, "口头报告", "verbal", req.actor)
        await self._record(Event(kind="report.verbal.made", step_id="verbal", actor=req.actor, at=at,
                                 payload={**self.s.verbal.model_dump(mode="json"), "on_time": not late}), *late)
        return self.view()

    @verbal.validator
    def _verbal_ok(self, req: VerbalIn) -> None:
        self._refuse_if("verbal", req)

    # ------------------------------------------------------------- written reports: draft, review, submit

    @workflow.update
    async def draft(self, req: DraftIn) -> ChainView:
        self._refuse_if("draft", req)
        if not self.s.reports:
            self.s.reports.append(WrittenReport(seq=0, kind="written", label="书面报告", deadline_key="written"))
        return await self._new_version(self.s.reports[-1], req)

    @draft.validator
    def _draft_ok(self, req: DraftIn) -> None:
        self._refuse_if("draft", req)

    @workflow.update
    async def followup(self, req: DraftIn) -> ChainView:
        return await self._next_report("followup", req)

    @followup.validator
    def _followup_ok(self, req: DraftIn) -> None:
        self._refuse_if("followup", req)

    @workflow.update
    async def final(self, req: DraftIn) -> ChainView:
        return await self._next_report("final", req)

    @final.validator
    def _final_ok(self, req: DraftIn) -> None:
        self._refuse_if("final", req)

    async def _next_report(self, kind: ReportKind, req: DraftIn) -> ChainView:
        self._refuse_if(kind, req)
        seq = len(self.s.reports)
        self.s.reports.append(WrittenReport(seq=seq, kind=kind, label=label_of(kind, seq), deadline_key=f"followup_{seq}"))
        return await self._new_version(self.s.reports[-1], req)

    async def _new_version(self, r: WrittenReport, req: DraftIn) -> ChainView:
        v = Version(version=len(r.versions) + 1, content=req.draft, by=req.actor, at=workflow.now())
        r.versions.append(v)
        r.state = "in_review"
        await self._record(Event(kind=f"report.{r.kind}.drafted", step_id=f"report/{r.seq}/v{v.version}", actor=req.actor,
                                 at=v.at, payload={"seq": r.seq, "label": r.label, "version": v.version,
                                                   "content": req.draft.model_dump(mode="json")}))
        return self.view()

    @workflow.update
    async def review(self, req: ReviewIn) -> ChainView:
        self._refuse_if("review", req)
        r, now = self.s.reports[-1], workflow.now()
        v = r.latest
        v.decision, v.reviewed_by, v.reviewed_at, v.comments = req.decision, req.actor, now, req.comments or None
        if req.decision == "approve":
            r.state, r.approved_by, r.approved_at = "approved", req.actor, now
            self.s.casualties = v.content.casualties  # the approved facts are the chain's facts
            self.s.severity = max(self.s.severity, self.rules.grade(v.content.severity, v.content.casualties),
                                  key=lambda x: x.rank)
        else:
            r.state = "returned"
        await self._record(Event(kind=f"report.{r.kind}.{'approved' if req.decision == 'approve' else 'returned'}",
                                 step_id=f"report/{r.seq}/v{v.version}/review", actor=req.actor, at=now,
                                 payload={"seq": r.seq, "label": r.label, "version": v.version, "comments": req.comments,
                                          "severity": self.s.severity.value}))
        if req.decision == "approve":
            await self._check_triggers()
        return self.view()

    @review.validator
    def _review_ok(self, req: ReviewIn) -> None:
        self._refuse_if("review", req)

    @workflow.update
    async def submit(self, req: SubmitIn) -> ChainView:
        self._refuse_if("submit", req)
        r, now = self.s.reports[-1], workflow.now()
        r.state, r.submitted_by, r.submitted_at = "submitted", req.actor, now
        late = self._meet(r.deadline_key, now, r.label, r.kind, req.actor)
        if r.kind == "final":
            self.s.closed_at = now
        else:
            seq = r.seq + 1
            self.s.deadlines.append(self._deadline(f"followup_{seq}", "followup", label_of("followup", seq),
                                                   now + self.rules.followup_every[self.s.severity]))
        await self._record(Event(kind=f"report.{r.kind}.submitted", step_id=f"report/{r.seq}/submitted", actor=req.actor,
                                 at=now, payload={"seq": r.seq, "label": r.label, "version": r.latest.version,
                                                  "approved_by": r.approved_by, "on_time": not late}), *late)
        await self._escalate("receipts", str(r.seq), r.label, self.rules.receipt_policy, "", report=r)
        return self.view()

    @submit.validator
    def _submit_ok(self, req: SubmitIn) -> None:
        self._refuse_if("submit", req)

    def _refuse_if(self, action: str, req: Actor) -> None:
        why = refusal(self.s, self.rules, action, req, workflow.now())
        if why is not None:
            raise ApplicationError(why[1], type=why[0], non_retryable=True)

    # ------------------------------------------------------------- triggers

    async def _check_triggers(self) -> None:
        i = self.info
        for t in self.rules.triggers:
            if t.id in self.s.fired or not t.when.holds(i.category, i.subtype, self.s.severity, self.s.casualties):
                continue
            self.s.fired.append(t.id)
            c = self.s.casualties
            text = t.message_zh.format(title=i.title, place=i.place, deaths=c.deaths, injured=c.injured,
                                       missing=c.missing, trapped=c.trapped, severity=self.s.severity.zh)
            await self._record(Event(kind="incident.trigger", step_id=f"trigger/{t.id}", at=workflow.now(),
                                     payload={"trigger": t.id, "name": t.name_zh, "call": t.call,
                                              "casualties": c.model_dump(), "severity": self.s.severity.value}))
            await self._escalate("trigger", t.id, t.name_zh, t.policy, t.call, text=text)

    # ------------------------------------------------------------- escalation episodes (the shared interpreter)

    async def _escalate(self, kind: Literal["overdue", "receipts", "trigger"], ref: str, label: str, policy: str,
                        call: str, text: str = "", report: WrittenReport | None = None) -> None:
        found: TargetsResult = await workflow.execute_activity(
            "reporting.targets", TargetsRequest(purpose=kind, incident=self.info, rules=self.rules, call=call,
                                                policy=policy), result_type=TargetsResult, **ACTIVITY)
        name = f"{kind}/{ref}"
        if kind == "overdue" and next(d for d in self.s.deadlines if d.key == ref).met_at is not None:
            return  # the report came while we looked for whom to call
        if found.gaps or not found.targets:
            await self._record(Event(kind=f"report.{kind}.gap", step_id=f"{name}/gap", at=workflow.now(),
                                     payload={"label": label, "gaps": found.gaps or ["nobody to call"]}))
        if not found.targets:
            return
        esc = Escalation.start(f"{workflow.info().workflow_id}/{name}", {policy: self.rules.policies[policy]},
                               found.targets)
        ep = Episode(name=name, kind=kind, ref=ref, label=label, text=text, esc=esc)
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
        if ep.stop is not None and not self.pausing:  # the report was made: stop, and tell whoever was reached
            actions = ep.esc.cancel(workflow.now(), ep.stop)
            if actions:
                await flush(actions)
        ep.done = ep.esc.done
        self.changed = True

    async def _flush(self, ep: Episode, actions: Actions) -> FlushResult:
        report = next((r for r in self.s.reports if ep.kind == "receipts" and str(r.seq) == ep.ref), None)
        due = next((d.due_at for d in self.s.deadlines if ep.kind == "overdue" and d.key == ep.ref), None)
        return await self._io("reporting.flush", FlushRequest(
            record=self._request([]), episode=ep.name, kind=ep.kind, ref=ep.ref, label=ep.label, text=ep.text,
            report=report, due_at=due, sends=actions.sends, records=actions.records), result_type=FlushResult)

    @workflow.signal(name="events")
    def events(self, batch: ShardEvents) -> None:
        """Acknowledgements and gateway reports (the same signal as a call-out shard's, routed by api/services/answers)."""
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
        return record_late_answers(self.s.episodes, batch.acks, lambda ep: not ep.done and ep.name in self.inboxes,
                                   self._flush, self.tasks)

    # ------------------------------------------------------------- the end, and continue-as-new

    async def _finish(self) -> None:
        await workflow.wait_condition(workflow.all_handlers_finished)
        for d in self.s.deadlines:
            if d.met_at is None:  # e.g. a verbal report never recorded: 漏报
                for ep in self.s.episodes:
                    if ep.kind == "overdue" and ep.ref == d.key and not ep.done:
                        ep.stop = "信息报送已终报结束"
                await self._record(Event(kind=f"report.{d.kind}.omitted", step_id=f"deadline/{d.key}/omitted",
                                         at=workflow.now(), payload={"deadline": d.key, "label": d.label,
                                                                     "due_at": d.due_at.isoformat()}))
        await asyncio.gather(*self.tasks.values())  # receipts of the final report, calls still running
        late = [d.key for d in self.s.deadlines if d.late_by_s]
        await self._record(Event(kind="incident.closed", step_id="closed", at=workflow.now(), payload={
            "deadlines": len(self.s.deadlines), "late": late, "omitted": [d.key for d in self.s.deadlines if d.met_at is None],
            "reports": [r.label for r in self.s.reports]}))

    def _history_is_long(self) -> bool:
        info = workflow.info()
        return info.get_current_history_length() > self.inp.max_history or info.is_continue_as_new_suggested()

    async def _continue_as_new(self) -> None:
        self.pausing = True  # escalations stop where they are; their state travels in the input
        await workflow.wait_condition(lambda: workflow.all_handlers_finished() and all(t.done() for t in self.tasks.values()))
        for inbox in self.inboxes.values():
            for item in inbox.drain():
                bucket = self.s.pending.acks if not isinstance(item, Report) else self.s.pending.reports
                if item not in bucket:
                    bucket.append(item)  # type: ignore[arg-type]
        self.s.runs += 1
        workflow.continue_as_new(self.inp.model_copy(update={"incident": self.info, "state": self.s}))

    async def _sleep_until_next_deadline(self) -> None:
        now = workflow.now()
        times = [t for d in self.s.deadlines if d.met_at is None
                 for t in ((d.remind_at if d.reminded_at is None else None), (d.due_at if d.overdue_at is None else None))
                 if t is not None]
        self.changed = False
        try:
            await workflow.wait_condition(lambda: self.changed or self.s.closed_at is not None,
                                          timeout=max(min(times) - now, timedelta(0)) if times else None)
        except asyncio.TimeoutError:
            pass

    # ------------------------------------------------------------- queries and I/O

    @workflow.update
    async def opened_view(self) -> ChainView:
        """Returns once the incident is stored: the API answers `POST /api/incidents` with it."""
        await workflow.wait_condition(lambda: self.opened)
        return self.view()

    @workflow.query
    def state(self) -> ChainView:
        return self.view()

    def view(self) -> ChainView:
        triggers = []
        for ep in self.s.episodes:
            if ep.kind == "trigger":
                ts = next(iter(ep.esc.targets.values()), None)
                triggers.append(TriggerView(id=ep.ref, label=ep.label, state=ts.state if ts else "none",
                                            acknowledged_by=ts.ack_by if ts else None,
                                            acknowledged_at=ts.acknowledged_at if ts else None))
        return ChainView(incident_id=self.info.incident_id, workflow_id=workflow.info().workflow_id,
                         status="closed" if self.s.closed_at else "open", received_at=self.s.received_at,
                         severity=self.s.severity, casualties=self.s.casualties, deadlines=self.s.deadlines,
                         verbal=self.s.verbal, reports=self.s.reports, triggers=triggers, closed_at=self.s.closed_at,
                         runs=self.s.runs)

    def _deadline(self, key: str, kind: str, label: str, due: datetime) -> Deadline:
        return Deadline(key=key, kind=kind, label=label, due_at=due, remind_at=due - self.rules.reminder_before)  # type: ignore[arg-type]

    def _opening(self) -> dict:
        d = {x.key: x.due_at.isoformat() for x in self.s.deadlines}
        return {**self.info.model_dump(mode="json", exclude={"created_by"}), "severity": self.s.severity.value,
                "rules": self.rules.id, "rules_version": self.inp.rules_version, "deadlines": d}

    def _request(self, events: list[Event]) -> RecordRequest:
        return RecordRequest(workflow_id=workflow.info().workflow_id, run_id=workflow.info().run_id, incident=self.info,
                             rules_id=self.rules.id, rules_version=self.inp.rules_version, events=events, view=self.view())

    async def _record(self, *events: Event) -> None:
        await self._io("reporting.record", lambda: self._request(list(events)))
        self.changed = True  # the main loop looks again: new deadlines, the end, a long history

    async def _io(self, activity: str, arg, result_type: type | None = None):
        """Every write goes through here, one at a time, each with the chain's latest state for the read model."""
        async with self.io:
            req = arg() if callable(arg) else arg
            if isinstance(req, (RemindRequest, FlushRequest)):
                req.record = self._request(req.record.events)
            return await workflow.execute_activity(activity, req, result_type=result_type, **ACTIVITY)
