"""The post-event review's workflow: one per incident (the procedure: workflows/review/__init__.py)."""
from __future__ import annotations

import math
from datetime import datetime

from temporalio import workflow

with workflow.unsafe.imports_passed_through():  # the kit and the messages: one copy, inside and outside the sandbox
    from workflows.kit.events import Review as Kinds  # the audit event kinds, defined once
    from workflows.callout import ShardEvents
    from workflows.common import Event
    from workflows.escalation import Actions, FlushResult
    from workflows.kit.episodes import Episode
    from workflows.kit.names import Review
    from workflows.kit.procedure import Procedure
    from workflows.kit.rules import refuse
    from workflows.review.models import (
        ACTIVITY, WORKFLOW_TYPE, ArchiveInfo, CompileIn, CompileRequest, FlushRequest, NotifyRequest, OpenRequest,
        OpenResult, RecordRequest, ReportInfo, ReviewInput, ReviewState, ReviewView, SealRequest, Signoff, SignoffIn,
        SummaryIn, TargetsRequest, TargetsResult, UnitState, UnitView, late_text, review_subject)
    from workflows.review.rules import RULES, answers_for, owner_refusal
    from workflows.kit.names import Reporting
    from workflows.reporting.models import SettleRequest, SettleResult


@workflow.defn(name=WORKFLOW_TYPE)
class PostEventReviewWorkflow(Procedure):
    RECORD = Review.RECORD
    RULES = RULES
    activity_options = ACTIVITY  # a large case file takes a while

    @workflow.init
    def __init__(self, inp: ReviewInput) -> None:
        self.inp = inp
        self.s: ReviewState | None = None
        self.early = ShardEvents()  # answers that came before the review opened
        self._init_procedure()

    @workflow.run
    async def run(self, inp: ReviewInput) -> ReviewView:
        await self._open()
        if self.s.units:  # every participating unit is asked for its written summary
            await self.call(Review.NOTIFY, lambda: NotifyRequest(
                record=self._record_request([]), template=self.s.opened.template, purpose="request",
                unit_ids=[u.unit_id for u in self.s.units]))
        while not self._closed():
            await self._deadlines_due()  # reminders; an overdue summary is escalated
            if self.s.status == "collecting" and all(u.submitted_at is not None for u in self.s.units):
                await self._compile("system")  # every summary is in: the preliminary report
            await self.sleep_until_next(self._next_times(), until=self._closed)
        await self._seal()  # signed off: the case file
        await self.episodes_finished()  # late answers that came while it closed
        return self.view()

    async def _open(self) -> None:
        info, now = workflow.info(), workflow.now()
        opened: OpenResult = await self.call(Review.OPEN, lambda: OpenRequest(
            input=self.inp, workflow_id=info.workflow_id, run_id=info.run_id, at=now), result_type=OpenResult)
        due = now + opened.template.summary_deadline
        self.s = ReviewState(started_at=now, opened=opened, units=[
            UnitState(unit_id=u.id, name=u.name, contact=u.contact, requested_at=now, due_at=due) for u in opened.units])
        self.resume_episodes()  # open: the answers that came early are delivered

    def _closed(self) -> bool:
        return self.s.status in ("signed", "sealed")

    def _stash(self) -> ShardEvents:
        return self.early

    def _clear_stash(self) -> None:
        self.early = ShardEvents()

    # ------------------------------------------------------------- deadlines: reminders, overdue

    def _next_reminder(self, u: UnitState) -> datetime | None:
        reminders = self.s.opened.template.reminders
        if u.submitted_at is not None or u.reminders_sent >= len(reminders):
            return None
        return u.due_at - reminders[u.reminders_sent]

    def _next_times(self) -> list[datetime]:
        return [t for u in self.s.units if u.submitted_at is None
                for t in (self._next_reminder(u), u.due_at if u.overdue_at is None else None) if t is not None]

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
                await self.call(Review.NOTIFY, lambda: NotifyRequest(
                    record=self._record_request([]), template=self.s.opened.template, purpose="reminder",
                    unit_ids=ids, round=rnd))
        for u in self.s.units:
            if u.submitted_at is None and u.overdue_at is None and workflow.now() >= u.due_at:
                u.overdue_at = workflow.now()
                await self.record(Event(kind=Kinds.SUMMARY_OVERDUE, step_id=f"unit/{u.unit_id}/overdue", at=u.due_at,
                                        payload={"unit_id": u.unit_id, "unit": u.name, "due_at": u.due_at.isoformat()}))
                await self._escalate(u)

    # ------------------------------------------------------------- escalation of an overdue summary (the shared interpreter)

    async def _escalate(self, u: UnitState) -> None:
        t = self.s.opened.template
        found: TargetsResult = await workflow.execute_activity(
            Review.TARGETS, TargetsRequest(unit_id=u.unit_id, unit_name=u.name, template=t),
            result_type=TargetsResult, **ACTIVITY)
        if u.submitted_at is not None:
            return  # the summary came while we looked for whom to call
        if found.gaps or not found.targets:
            await self.record(Event(kind=Kinds.ESCALATION_GAP, step_id=f"overdue/{u.unit_id}/gap", at=workflow.now(),
                                    payload={"unit_id": u.unit_id, "unit": u.name,
                                             "gaps": found.gaps or ["nobody to call"]}))
        if not found.targets or u.submitted_at is not None or self._closed():
            return
        self.start_escalation("overdue", u.unit_id, {t.overdue_policy: t.policies[t.overdue_policy]}, found.targets)

    async def _flush(self, ep: Episode, actions: Actions) -> FlushResult:
        return await self.call(Review.FLUSH, lambda: FlushRequest(
            record=self._record_request([]), episode=ep.name, unit_id=ep.ref, text_zh=self.s.opened.template.overdue_zh,
            sends=actions.sends, records=actions.records), result_type=FlushResult)

    # ------------------------------------------------------------- summaries

    @workflow.update
    async def summary(self, req: SummaryIn) -> ReviewView:
        await self._opened()
        self.refuse_if("summary", req)
        u, now = self._unit(req.unit_id), workflow.now()
        first = u.submitted_at is None
        u.version += 1
        u.content, u.submitted_by = req.summary, req.actor
        u.on_behalf = not answers_for(self.s, req)
        if first:
            u.submitted_at = now
            u.late_by_s = max(0, math.ceil((now - u.due_at).total_seconds()))
        self.stop_episodes(lambda ep: ep.ref == u.unit_id, f"{u.name}书面总结已报送")
        self.s.dirty = True
        if self.s.status == "compiled":
            self.s.status = "collecting"  # the compiled report no longer has every summary as it stands
        events = [Event(kind=Kinds.SUMMARY_SUBMITTED, step_id=f"unit/{u.unit_id}/v{u.version}", actor=req.actor, at=now,
                        payload={"unit_id": u.unit_id, "unit": u.name, "version": u.version, "first": first,
                                 "due_at": u.due_at.isoformat(), "on_time": not u.late_by_s,
                                 "late_by_s": u.late_by_s, "summary": req.summary.model_dump(mode="json"),
                                 "on_behalf": u.on_behalf, "on_behalf_of": u.unit_id if u.on_behalf else None})]
        if first and u.late_by_s:
            events.append(Event(kind=Kinds.SUMMARY_LATE, step_id=f"unit/{u.unit_id}/late", actor=req.actor, at=now,
                                payload={"unit_id": u.unit_id, "unit": u.name, "due_at": u.due_at.isoformat(),
                                         "submitted_at": now.isoformat(), "late_by_s": u.late_by_s,
                                         "mark": f"迟交{late_text(u.late_by_s)}"}))
        await self.record(*events)
        return self.view()

    @summary.validator
    def _summary_ok(self, req: SummaryIn) -> None:
        self.refuse_if("summary", req)
        refuse(owner_refusal(self.s, req))

    # ------------------------------------------------------------- the report: compile, sign off

    @workflow.update
    async def compile(self, req: CompileIn) -> ReviewView:
        await self._opened()
        self.refuse_if("compile", req)
        await self._compile(req.actor)
        return self.view()

    @compile.validator
    def _compile_ok(self, req: CompileIn) -> None:
        self.refuse_if("compile", req)

    async def _compile(self, by: str, final: bool = False, signoff: Signoff | None = None) -> ReportInfo:
        version = len(self.s.reports) + 1
        self.s.dirty = False
        info: ReportInfo = await self.call(Review.COMPILE, lambda: CompileRequest(
            record=self._record_request([]), version=version, final=final, by=by, signoff=signoff), result_type=ReportInfo)
        self.s.reports.append(info)
        if not final and not self.s.dirty:
            self.s.status = "compiled"
        await self.record()  # the read model: the status, the version
        return info

    @workflow.update
    async def signoff(self, req: SignoffIn) -> ReviewView:
        await self._opened()
        self.refuse_if("signoff", req)
        latest, now = self.s.reports[-1], workflow.now()
        so = Signoff(decision=req.decision, by=req.actor, at=now, version=latest.version, lessons=req.lessons.strip(),
                     comments=req.comments.strip())
        self.s.signoffs.append(so)
        if req.decision == "return":
            self.s.status, self.s.dirty = "returned", True
            await self.record(Event(kind=Kinds.REPORT_RETURNED, step_id=f"report/v{latest.version}/returned",
                                    actor=req.actor, at=now, payload={"version": latest.version,
                                                                      "comments": so.comments}))
            return self.view()
        self.s.status = "signed"  # no step may start now: the final report is what was approved
        await self.record(Event(kind=Kinds.REPORT_SIGNED, step_id=f"report/v{latest.version}/signed", actor=req.actor,
                                at=now, payload={"version": latest.version, "lessons": so.lessons,
                                                 "comments": so.comments, "sha256_json": latest.sha256_json}))
        if workflow.patched("settle-reporting"):  # before the final report: the case file shows the chain settled
            await self.call(Reporting.SETTLE, lambda: SettleRequest(
                incident_ids=[self.inp.incident_id], by=review_subject(self.inp.incident_id), actor=req.actor,
                reason="复盘报告签发,案卷封存"), result_type=SettleResult)
        await self._compile(req.actor, final=True, signoff=so)
        self.changed = True
        return self.view()

    @signoff.validator
    def _signoff_ok(self, req: SignoffIn) -> None:
        self.refuse_if("signoff", req)

    # ------------------------------------------------------------- the case file

    async def _seal(self) -> None:
        await workflow.wait_condition(workflow.all_handlers_finished)
        self.stop_episodes(lambda ep: True, "复盘报告已签发")
        await self.episodes_finished()
        signed = self.s.signoffs[-1]
        self.s.archive = await self.call(Review.SEAL, lambda: SealRequest(record=self._record_request([]), by=signed.by),
                                         result_type=ArchiveInfo)
        self.s.status = "sealed"
        await self.record(Event(kind=Kinds.CLOSED, step_id="closed", at=workflow.now(), payload={
            "archive_sha256": self.s.archive.sha256, "units": len(self.s.units),
            "submitted": sum(u.submitted_at is not None for u in self.s.units),
            "late": [u.unit_id for u in self.s.units if u.late_by_s],
            "missing": [u.unit_id for u in self.s.units if u.submitted_at is None]}))

    # ------------------------------------------------------------- what it shows

    async def _opened(self) -> None:
        await workflow.wait_condition(lambda: self.opened)

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
            ep = next((e for e in reversed(s.episodes) if e.ref == u.unit_id), None)
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

    def _record_request(self, events: list[Event]) -> RecordRequest:
        return RecordRequest(workflow_id=workflow.info().workflow_id, run_id=workflow.info().run_id, events=events,
                             view=self.view())
