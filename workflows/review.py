"""Post-event review 复盘/总结评估 (seed 003 篇四 §三(三)3, 篇七 §三(八); seed 000 任务 8), one workflow per incident.

Started when a response is terminated (the activation starts it as a child *by name*:
type ``PostEventReviewWorkflow``, id ``review-{incident_id}``, one dict argument
``{"incident_id", "activation_id", "started_by", "units"}``) or by hand for any incident.

1. Every participating unit is asked for a written summary 书面总结 — what worked 经验做法,
   shortcomings 存在不足, suggestions 意见建议 — due after the template's deadline (7 days by
   default), with reminders before it; at the deadline the unit's head is called through
   the shared escalation interpreter (deputy, superior, the duty chief told).
2. When every summary is in (or, after the deadline, when the duty office decides), the
   preliminary event report 初步事件报告 is compiled: the timeline and the statistics are
   computed from the audit trail alone, with the summaries; HTML, PDF and JSON.
3. The leading leader signs it off (approve with the lessons 经验教训, or return with comments).
4. The case file 一事一档 is sealed: one archive with the report, the whole audit trail, every
   message, the definitions used and a manifest of hashes; its hash goes into the audit trail.

People act through updates whose validators say who may act and in which order.
"""
from __future__ import annotations

import asyncio
import math
from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from temporalio import workflow
from temporalio.exceptions import ApplicationError

from workflows import subjects
from workflows.common import CONFLICT, FORBIDDEN, INVALID, Actor, Event, activity_options

with workflow.unsafe.imports_passed_through():
    from definitions.schema.review import ReviewTemplate
    from workflows.callout import ShardEvents
    from workflows.escalation import Actions, Escalation, FlushResult, Inbox, Record, Send, Target, drive
    from workflows.escalation import record_late_answers

ACTIVITY = activity_options(start_to_close=timedelta(minutes=10))  # a large case file takes a while
WORKFLOW_TYPE = "PostEventReviewWorkflow"
Status = Literal["collecting", "compiled", "returned", "signed", "sealed"]


def review_workflow_id(incident_id: str) -> str:
    return f"review-{incident_id}"


# the review's own audit subject, review/<incident id> (one builder per kind: workflows/subjects.py)
review_subject = subjects.review_subject


# ----------------------------------------------------------------- messages


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


class Episode(BaseModel):
    """One run of the escalation interpreter for an overdue summary."""

    name: str
    unit_id: str
    esc: Escalation
    stop: str | None = None
    done: bool = False


class ReviewState(BaseModel):
    started_at: datetime
    opened: OpenResult
    units: list[UnitState]
    status: Status = "collecting"
    reports: list[ReportInfo] = Field(default_factory=list)
    signoffs: list[Signoff] = Field(default_factory=list)
    episodes: list[Episode] = Field(default_factory=list)
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


# ----------------------------------------------------------------- the procedure's rules of order


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


def refusal(s: ReviewState, action: str, req: Actor, now: datetime) -> tuple[str, str] | None:
    """Why the procedure refuses this step now, as (forbidden | conflict | invalid, reason); None if allowed."""
    t = s.opened.template
    allowed = getattr(t.roles, action)
    if action == "summary":
        allowed = [*allowed, *(r for r in t.roles.on_behalf if r not in allowed)]
    if req.role not in allowed:
        return FORBIDDEN, f"role {req.role!r} may not {action} here; allowed: {', '.join(allowed)}"
    if s.status in ("signed", "sealed"):
        return CONFLICT, "the event report was signed off; the review is closed and the case file sealed"
    latest = s.reports[-1] if s.reports else None
    if action == "summary":
        assert isinstance(req, SummaryIn)
        if not any(u.unit_id == req.unit_id for u in s.units):
            known = ", ".join(u.unit_id for u in s.units) or "none"
            return INVALID, f"unit_id: {req.unit_id!r} is not a participating unit of this review (units: {known})"
    elif action == "compile":
        if s.status == "compiled" and not s.dirty and latest is not None:
            return CONFLICT, f"report v{latest.version} is compiled and nothing changed since; it awaits sign-off"
        missing = [u for u in s.units if u.submitted_at is None]
        due = max((u.due_at for u in missing), default=None)
        if missing and due is not None and now < due:
            names = "、".join(u.name for u in missing)
            return CONFLICT, (f"{len(missing)} unit(s) have not submitted their summary ({names}) and the deadline "
                              f"({due.isoformat()}) has not passed; compile once they have, or after the deadline")
    elif action == "signoff":
        assert isinstance(req, SignoffIn)
        if latest is None:
            return CONFLICT, "there is no compiled report to sign off"
        if s.status != "compiled":
            why = "was returned" if s.status == "returned" else "is out of date: a summary came in after it was compiled"
            return CONFLICT, f"report v{latest.version} {why}; compile it again first"
        if req.version is not None and req.version != latest.version:
            return CONFLICT, f"version {req.version} is not the latest report (v{latest.version})"
        if req.decision == "approve" and not req.lessons.strip():
            return INVALID, "lessons: give the lessons and the overall assessment (经验教训) when signing off"
        if req.decision == "return" and not req.comments.strip():
            return INVALID, "comments: say what to change when returning the report"
    return None


def answers_for(s: ReviewState, req: SummaryIn) -> bool:
    """Is the caller the unit's own voice (its head or the head's deputy, with a role the template lets submit)?"""
    ref = next((u for u in s.opened.units if u.id == req.unit_id), None)
    return ref is not None and req.actor in ref.answerers and req.role in s.opened.template.roles.summary


def owner_refusal(s: ReviewState, req: SummaryIn) -> tuple[str, str] | None:
    """A unit's summary comes from that unit, or the duty office enters it on the unit's behalf (recorded as such).
    Checked by the update's validator only: units' answerers are known from this version on, and a saved history
    replays its handler without them."""
    if answers_for(s, req):
        return None
    t = s.opened.template
    if req.role in t.roles.on_behalf:
        return None
    ref = next((u for u in s.opened.units if u.id == req.unit_id), None)
    name = ref.name if ref else req.unit_id
    head = (ref.contact if ref else "") or "its head"
    office = ", ".join(t.roles.on_behalf) or "nobody, in this review"
    return FORBIDDEN, (f"{req.actor} does not answer for {name} ({req.unit_id}): its summary comes from the unit "
                       f"({head}, or the head's deputy) or is entered on its behalf by the duty office ({office}), "
                       f"not by role {req.role!r} / 非本单位人员不得报送{name}的书面总结")


# ----------------------------------------------------------------- the workflow


@workflow.defn(name=WORKFLOW_TYPE)
class PostEventReviewWorkflow:
    @workflow.init
    def __init__(self, inp: ReviewInput) -> None:
        self.inp = inp
        self.s: ReviewState | None = None
        self.inboxes: dict[str, Inbox] = {}
        self.tasks: dict[str, asyncio.Task] = {}
        self.io = asyncio.Lock()
        self.changed = False
        self.early: ShardEvents = ShardEvents()

    @workflow.run
    async def run(self, inp: ReviewInput) -> ReviewView:
        info, now = workflow.info(), workflow.now()
        opened: OpenResult = await workflow.execute_activity(
            "review.open", OpenRequest(input=inp, workflow_id=info.workflow_id, run_id=info.run_id, at=now),
            result_type=OpenResult, **ACTIVITY)
        due = now + opened.template.summary_deadline
        self.s = ReviewState(started_at=now, opened=opened, units=[
            UnitState(unit_id=u.id, name=u.name, contact=u.contact, requested_at=now, due_at=due) for u in opened.units])
        self._deliver(self.early)
        if self.s.units:
            await self._io("review.notify", NotifyRequest(record=self._request([]), template=opened.template,
                                                          purpose="request", unit_ids=[u.unit_id for u in self.s.units]))

        while self.s.status not in ("signed", "sealed"):
            await self._deadlines_due()
            if self.s.status == "collecting" and all(u.submitted_at is not None for u in self.s.units):
                await self._compile("system")
            await self._sleep_until_next()
        await self._seal()
        await asyncio.gather(*self.tasks.values())  # late answers that came while it closed
        return self.view()

    # ------------------------------------------------------------- deadlines: reminders, overdue

    def _next_reminder(self, u: UnitState) -> datetime | None:
        reminders = self.s.opened.template.reminders
        if u.submitted_at is not None or u.reminders_sent >= len(reminders):
            return None
        return u.due_at - reminders[u.reminders_sent]

    async def _deadlines_due(self) -> None:
        now = workflow.now()
        due_now = [u for u in self.s.units if (t := self._next_reminder(u)) is not None and t <= now]
        if due_now:
            rounds: dict[int, list[str]] = {}
            for u in due_now:
                rnd = u.reminders_sent
                while (t := self._next_reminder(u)) is not None and t <= now:  # skip reminders already past
                    u.reminders_sent += 1
                if now < u.due_at:
                    rounds.setdefault(rnd, []).append(u.unit_id)
            for rnd, ids in sorted(rounds.items()):
                await self._io("review.notify", NotifyRequest(
                    record=self._request([]), template=self.s.opened.template, purpose="reminder", unit_ids=ids,
                    round=rnd))
        for u in self.s.units:
            if u.submitted_at is None and u.overdue_at is None and workflow.now() >= u.due_at:
                u.overdue_at = workflow.now()
                await self._record(Event(kind="review.summary.overdue", step_id=f"unit/{u.unit_id}/overdue", at=u.due_at,
                                         payload={"unit_id": u.unit_id, "unit": u.name, "due_at": u.due_at.isoformat()}))
                await self._escalate(u)

    async def _sleep_until_next(self) -> None:
        times = [t for u in self.s.units if u.submitted_at is None
                 for t in (self._next_reminder(u), u.due_at if u.overdue_at is None else None) if t is not None]
        self.changed = False
        now = workflow.now()
        try:
            await workflow.wait_condition(lambda: self.changed or self.s.status in ("signed", "sealed"),
                                          timeout=max(min(times) - now, timedelta(0)) if times else None)
        except asyncio.TimeoutError:
            pass

    # ------------------------------------------------------------- escalation of an overdue summary (the shared interpreter)

    async def _escalate(self, u: UnitState) -> None:
        t = self.s.opened.template
        found: TargetsResult = await workflow.execute_activity(
            "review.targets", TargetsRequest(unit_id=u.unit_id, unit_name=u.name, template=t),
            result_type=TargetsResult, **ACTIVITY)
        name = f"overdue/{u.unit_id}"
        if u.submitted_at is not None:
            return  # the summary came while we looked for whom to call
        if found.gaps or not found.targets:
            await self._record(Event(kind="review.escalation.gap", step_id=f"{name}/gap", at=workflow.now(),
                                     payload={"unit_id": u.unit_id, "unit": u.name,
                                              "gaps": found.gaps or ["nobody to call"]}))
        if not found.targets or u.submitted_at is not None or self.s.status in ("signed", "sealed"):
            return
        esc = Escalation.start(f"{workflow.info().workflow_id}/{name}", {t.overdue_policy: t.policies[t.overdue_policy]},
                               found.targets)
        ep = Episode(name=name, unit_id=u.unit_id, esc=esc)
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

        await drive(ep.esc, inbox, flush, until=lambda: ep.stop is not None)
        if ep.stop is not None:  # the summary came (or the review closed): stop, and tell whoever was reached
            actions = ep.esc.cancel(workflow.now(), ep.stop)
            if actions:
                await flush(actions)
        ep.done = True
        self.changed = True

    async def _flush(self, ep: Episode, actions: Actions) -> FlushResult:
        return await self._io("review.flush", FlushRequest(
            record=self._request([]), episode=ep.name, unit_id=ep.unit_id, text_zh=self.s.opened.template.overdue_zh,
            sends=actions.sends, records=actions.records), result_type=FlushResult)

    @workflow.signal(name="events")
    def events(self, batch: ShardEvents) -> None:
        """Acknowledgements and gateway reports (routed by api/services/answers like a call-out shard's)."""
        self._deliver(batch)

    @workflow.update(name="answers")
    def answers(self, batch: ShardEvents) -> list[dict[str, Any]]:
        """The `events` signal, answering what became of each acknowledgement (taken, recorded late, a repeat),
        for the API to say so (api/services/answers)."""
        return self._deliver(batch)

    def _deliver(self, batch: ShardEvents) -> list[dict[str, Any]]:
        if self.s is None:
            self.early.acks.extend(batch.acks)
            self.early.reports.extend(batch.reports)
            return [{"recorded": "taken", "late_by_s": None} for _ in batch.acks]
        for ep in self.s.episodes:
            if not ep.done and ep.name in self.inboxes:
                self.inboxes[ep.name].put([*batch.acks, *batch.reports])
        return record_late_answers(self.s.episodes, batch.acks, lambda ep: not ep.done and ep.name in self.inboxes,
                                   self._flush, self.tasks)

    # ------------------------------------------------------------- summaries

    @workflow.update
    async def summary(self, req: SummaryIn) -> ReviewView:
        await self._opened()
        self._refuse_if("summary", req)
        u, now = self._unit(req.unit_id), workflow.now()
        first = u.submitted_at is None
        u.version += 1
        u.content, u.submitted_by = req.summary, req.actor
        u.on_behalf = not answers_for(self.s, req)
        if first:
            u.submitted_at = now
            u.late_by_s = max(0, math.ceil((now - u.due_at).total_seconds()))
        for ep in self.s.episodes:
            if ep.unit_id == u.unit_id and not ep.done:
                ep.stop = f"{u.name}书面总结已报送"
        self.s.dirty = True
        if self.s.status == "compiled":
            self.s.status = "collecting"  # the compiled report no longer has every summary as it stands
        events = [Event(kind="review.summary.submitted", step_id=f"unit/{u.unit_id}/v{u.version}", actor=req.actor, at=now,
                        payload={"unit_id": u.unit_id, "unit": u.name, "version": u.version, "first": first,
                                 "due_at": u.due_at.isoformat(), "on_time": not u.late_by_s,
                                 "late_by_s": u.late_by_s, "summary": req.summary.model_dump(mode="json"),
                                 "on_behalf": u.on_behalf, "on_behalf_of": u.unit_id if u.on_behalf else None})]
        if first and u.late_by_s:
            events.append(Event(kind="review.summary.late", step_id=f"unit/{u.unit_id}/late", actor=req.actor, at=now,
                                payload={"unit_id": u.unit_id, "unit": u.name, "due_at": u.due_at.isoformat(),
                                         "submitted_at": now.isoformat(), "late_by_s": u.late_by_s,
                                         "mark": f"迟交{late_text(u.late_by_s)}"}))
        await self._record(*events)
        return self.view()

    @summary.validator
    def _summary_ok(self, req: SummaryIn) -> None:
        self._refuse_if("summary", req)
        why = owner_refusal(self.s, req)
        if why is not None:
            raise ApplicationError(why[1], type=why[0], non_retryable=True)

    # ------------------------------------------------------------- the report: compile, sign off

    @workflow.update
    async def compile(self, req: CompileIn) -> ReviewView:
        await self._opened()
        self._refuse_if("compile", req)
        await self._compile(req.actor)
        return self.view()

    @compile.validator
    def _compile_ok(self, req: CompileIn) -> None:
        self._refuse_if("compile", req)

    async def _compile(self, by: str, final: bool = False, signoff: Signoff | None = None) -> ReportInfo:
        version = len(self.s.reports) + 1
        self.s.dirty = False
        info: ReportInfo = await self._io("review.compile", lambda: CompileRequest(
            record=self._request([]), version=version, final=final, by=by, signoff=signoff), result_type=ReportInfo)
        self.s.reports.append(info)
        if not final and not self.s.dirty:
            self.s.status = "compiled"
        await self._io("review.record", lambda: self._request([]))  # the read model: the status, the version
        self.changed = True
        return info

    @workflow.update
    async def signoff(self, req: SignoffIn) -> ReviewView:
        await self._opened()
        self._refuse_if("signoff", req)
        latest, now = self.s.reports[-1], workflow.now()
        so = Signoff(decision=req.decision, by=req.actor, at=now, version=latest.version, lessons=req.lessons.strip(),
                     comments=req.comments.strip())
        self.s.signoffs.append(so)
        if req.decision == "return":
            self.s.status, self.s.dirty = "returned", True
            await self._record(Event(kind="review.report.returned", step_id=f"report/v{latest.version}/returned",
                                     actor=req.actor, at=now, payload={"version": latest.version,
                                                                       "comments": so.comments}))
            return self.view()
        self.s.status = "signed"  # no step may start now: the final report is what was approved
        await self._record(Event(kind="review.report.signed", step_id=f"report/v{latest.version}/signed", actor=req.actor,
                                 at=now, payload={"version": latest.version, "lessons": so.lessons,
                                                  "comments": so.comments, "sha256_json": latest.sha256_json}))
        await self._compile(req.actor, final=True, signoff=so)
        self.changed = True
        return self.view()

    @signoff.validator
    def _signoff_ok(self, req: SignoffIn) -> None:
        self._refuse_if("signoff", req)

    def _refuse_if(self, action: str, req: Actor) -> None:
        if self.s is None:
            raise ApplicationError("the review is still opening; try again in a moment", type=CONFLICT,
                                   non_retryable=True)
        why = refusal(self.s, action, req, workflow.now())
        if why is not None:
            raise ApplicationError(why[1], type=why[0], non_retryable=True)

    # ------------------------------------------------------------- the case file

    async def _seal(self) -> None:
        await workflow.wait_condition(workflow.all_handlers_finished)
        for ep in self.s.episodes:
            if not ep.done:
                ep.stop = "复盘报告已签发"
        await asyncio.gather(*self.tasks.values())
        signed = self.s.signoffs[-1]
        self.s.archive = await self._io("review.seal", lambda: SealRequest(record=self._request([]), by=signed.by),
                                        result_type=ArchiveInfo)
        self.s.status = "sealed"
        await self._record(Event(kind="review.closed", step_id="closed", at=workflow.now(), payload={
            "archive_sha256": self.s.archive.sha256, "units": len(self.s.units),
            "submitted": sum(u.submitted_at is not None for u in self.s.units),
            "late": [u.unit_id for u in self.s.units if u.late_by_s],
            "missing": [u.unit_id for u in self.s.units if u.submitted_at is None]}))

    # ------------------------------------------------------------- queries and I/O

    async def _opened(self) -> None:
        await workflow.wait_condition(lambda: self.s is not None)

    @workflow.update
    async def opened_view(self) -> ReviewView:
        """Returns once the review is open (units asked): the API answers `POST /api/reviews` with it."""
        await self._opened()
        return self.view()

    @workflow.query
    def state(self) -> ReviewView | None:
        return self.view() if self.s is not None else None

    def _unit(self, unit_id: str) -> UnitState:
        return next(u for u in self.s.units if u.unit_id == unit_id)

    def view(self) -> ReviewView:
        s, o = self.s, self.s.opened
        units = []
        for u in s.units:
            if u.submitted_at is not None:
                state = "late" if u.late_by_s else "submitted"
            else:
                state = "overdue" if u.overdue_at is not None else "requested"
            ep = next((e for e in reversed(s.episodes) if e.unit_id == u.unit_id), None)
            esc = None
            if ep is not None:
                ts = next(iter(ep.esc.targets.values()), None)
                esc = "stopped" if ep.stop else (ts.state if ts else None)
            units.append(UnitView(unit_id=u.unit_id, name=u.name, contact=u.contact, requested_at=u.requested_at,
                                  due_at=u.due_at, state=state, submitted_at=u.submitted_at, submitted_by=u.submitted_by,
                                  late_by_s=u.late_by_s, version=u.version, summary=u.content, escalation=esc,
                                  on_behalf=u.on_behalf))
        return ReviewView(incident_id=self.inp.incident_id, activation_id=self.inp.activation_id,
                          workflow_id=workflow.info().workflow_id, subject=review_subject(self.inp.incident_id),
                          title=o.title, status=s.status, started_at=s.started_at, started_by=self.inp.started_by,
                          template=o.template.id, template_version=o.template_version, subjects=o.subjects, units=units,
                          reports=s.reports, signoffs=s.signoffs, archive=s.archive, gaps=o.gaps)

    def _request(self, events: list[Event]) -> RecordRequest:
        return RecordRequest(workflow_id=workflow.info().workflow_id, run_id=workflow.info().run_id, events=events,
                             view=self.view())

    async def _record(self, *events: Event) -> None:
        await self._io("review.record", lambda: self._request(list(events)))
        self.changed = True

    async def _io(self, activity: str, arg, result_type: type | None = None):
        """Every write goes through here, one at a time, each with the review's latest state for the read model."""
        async with self.io:
            req = arg() if callable(arg) else arg
            if hasattr(req, "record") and isinstance(req.record, RecordRequest):
                req.record = self._request(req.record.events)
            return await workflow.execute_activity(activity, req, result_type=result_type, **ACTIVITY)

