"""The reporting chain's workflow: one per incident (the procedure: workflows/reporting/__init__.py)."""
from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Literal

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():  # the kit and the messages: one copy, inside and outside the sandbox
    from workflows.kit.events import Reporting as Kinds  # the audit event kinds, defined once
    from workflows.common import ACTIVITY, Event
    from workflows.escalation import Actions, FlushResult
    from workflows.kit.episodes import Episode
    from workflows.kit.names import Reporting
    from workflows.kit.procedure import Procedure
    from workflows.reporting.models import (
        FINAL_LABEL, ChainState, ChainView, Deadline, DraftIn, FlushRequest, RecordRequest, RemindRequest, ReportingInput,
        ReportKind, ReviewIn, SettleIn, SubmitIn, TargetsRequest, TargetsResult, TriggerView, UnitReport, Upward, UpwardRequest,
        UPWARD_ATTEMPTS, UpwardResult, VerbalIn, VerbalRecord, VerticalIn, VerticalRecord, Version, WrittenReport, label_of, overdue_text, settle_as)
    from workflows.reporting.rules import RULES, Chain


UPWARD_RETRY = RetryPolicy(initial_interval=timedelta(seconds=10), backoff_coefficient=2.0, maximum_attempts=UPWARD_ATTEMPTS)


@workflow.defn
class IncidentReportingWorkflow(Procedure):
    RECORD = Reporting.RECORD
    RULES = RULES

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
            self.s = ChainState(received_at=received, severity=severity, casualties=inp.incident.casualties,
                                figures=inp.incident.figures, deadlines=[
                self._deadline("verbal", "verbal", "口头报告", received + limits.verbal),
                self._deadline("written", "written", "书面报告", received + limits.written)])
        self._init_procedure()

    @workflow.run
    async def run(self, inp: ReportingInput) -> ChainView:
        if inp.state is None:
            unit_late = self._unit_report()
            await self.record(Event(kind=Kinds.RECEIVED, step_id="received", actor=self.info.created_by,
                                    at=self.s.received_at, payload=self._opening()), *unit_late)
            await self._check_triggers()
        else:
            await self.record(Event(kind=Kinds.CONTINUED, step_id=f"continued/{self.s.runs}", at=workflow.now(),
                                    payload={"run": self.s.runs}))
        self.resume_episodes()
        while self.s.closed_at is None:
            await self._upward_due()
            await self._deadlines_due()
            if self.history_is_long():
                await self.continue_as_new(incident=self.info)
            await self.sleep_until_next(self._next_times(), until=lambda: self.s.closed_at is not None)
        if workflow.patched("incident-upward-final"):  # the final report's update owes it upward as it ends: wait
            await workflow.wait_condition(workflow.all_handlers_finished)  # (before the patch it never went up)
        await self._upward_due()  # the final report 终报 too
        await self._finish()
        await self.episodes_finished()  # late answers that came while it closed
        return self.view()

    # ------------------------------------------------------------- deadlines

    async def _deadlines_due(self) -> None:
        for d in self.s.deadlines:
            now = workflow.now()
            if d.met_at is not None or d.settled is not None:  # (settled: the chain ended while we were here)
                continue
            if d.reminded_at is None and now >= d.remind_at:
                d.reminded_at = now
                if now < d.due_at:  # a reminder after the deadline would only be noise
                    await self.call(Reporting.REMIND, lambda: RemindRequest(
                        record=self._record_request([]), deadline=d, roles=self.rules.remind))
            if d.overdue_at is None and now >= d.due_at:
                d.overdue_at = now
                await self._overdue(d)

    def _next_times(self) -> list[datetime]:
        return [t for d in self.s.deadlines if d.met_at is None and d.settled is None
                for t in ((d.remind_at if d.reminded_at is None else None), (d.due_at if d.overdue_at is None else None))
                if t is not None]

    async def _overdue(self, d: Deadline) -> None:
        await self.record(Event(kind=Kinds.deadline(d.kind, "overdue"), step_id=f"deadline/{d.key}/overdue", at=d.due_at,
                                payload={"deadline": d.key, "label": d.label, "due_at": d.due_at.isoformat()}))
        await self._escalate("overdue", d.key, d.label, self.rules.overdue_policy, "duty_chief",
                             text=overdue_text(self.info.title, d.label))

    def _meet(self, key: str, at: datetime, by: str, kind: str, actor: str) -> list[Event]:
        """A deadline is met: the time it took, and a permanent late mark if it was late."""
        d = next(d for d in self.s.deadlines if d.key == key)
        d.met_at, d.met_by, d.late_by_s = at, by, max(0, math.ceil((at - d.due_at).total_seconds()))
        self.stop_episodes(lambda ep: ep.kind == "overdue" and ep.ref == key, f"{by}已报出")
        self.changed = True
        if not d.late_by_s:
            return []
        minutes = -(-d.late_by_s // 60)
        return [Event(kind=Kinds.deadline(kind, "late"), step_id=f"deadline/{key}/late", actor=actor, at=at,
                      payload={"deadline": key, "label": d.label, "met_by": by, "due_at": d.due_at.isoformat(),
                               "met_at": at.isoformat(), "late_by_s": d.late_by_s, "late_by_min": minutes,
                               "mark": f"迟报{minutes}分钟"})]

    def _unit_report(self) -> list[Event]:
        """The reporting unit's own report to the duty office, measured from 知悉 (known_at) against the rules'
        `unit_report_within`: kept in the chain's state, and a permanent 迟报 mark (report.unit.late) if it was late.
        Only for an intake that gives known_at (older chains have none: no patch marker in their histories)."""
        i, within = self.info, self.rules.unit_report_within
        if i.known_at is None or within is None or not workflow.patched("incident-unit-report"):
            return []
        reported = i.reported_at or self.s.received_at
        due = i.known_at + within
        late_by = max(0, math.ceil((reported - due).total_seconds()))
        self.s.unit_report = UnitReport(unit=i.reporting_unit, unit_id=i.reporting_unit_id, occurred_at=i.occurred_at,
                                        known_at=i.known_at, reported_at=reported, due_at=due, late_by_s=late_by)
        if not late_by:
            return []
        minutes = -(-late_by // 60)
        return [Event(kind=Kinds.UNIT_LATE, step_id="unit/late", actor=self.info.created_by, at=self.s.received_at,
                      payload={"deadline": "unit", "label": f"{i.reporting_unit}报告", "unit": i.reporting_unit,
                               "unit_id": i.reporting_unit_id, "known_at": i.known_at.isoformat(),
                               "due_at": due.isoformat(), "met_at": reported.isoformat(), "late_by_s": late_by,
                               "late_by_min": minutes, "mark": f"迟报{minutes}分钟"})]

    # ------------------------------------------------------------- upward 上报: the city, the province

    def _owe_upward(self, kind: str, label: str, report_id: str, version: int, seq: int | None = None) -> None:
        """A report the city (province) is owed: sent by the main loop (`_upward_due`), so the update answers at once.
        Behind workflow.patched("incident-upward"): chains that ran before it owe nothing upward."""
        if self.rules.upward and workflow.patched("incident-upward"):
            self.s.upward.append(Upward(report_id=report_id, version=version, kind=kind, label=label, seq=seq))  # type: ignore[arg-type]
            self.changed = True

    async def _upward_due(self) -> None:
        for item in self.s.upward:
            if item.done:
                continue
            report = next((r for r in self.s.reports if r.seq == item.seq), None) if item.seq is not None else None
            for r in self.rules.upward:
                if r.receives(item.kind, self.s.severity):
                    try:
                        await workflow.execute_activity(
                            Reporting.UPWARD, UpwardRequest(
                                workflow_id=workflow.info().workflow_id, run_id=workflow.info().run_id,
                                incident=self.info, received_at=self.s.received_at, severity=self.s.severity, item=item,
                                recipient=r, verbal=self.s.verbal, report=report),
                            result_type=UpwardResult, start_to_close_timeout=timedelta(minutes=2),
                            retry_policy=UPWARD_RETRY)
                    except ActivityError as exc:  # neither the line nor the SMS: said so, the chain goes on
                        await self.record(Event(
                            kind=Kinds.CITY_FAILED, step_id=f"city/{r.id}/{item.report_id.rsplit('/', 1)[-1]}/v{item.version}"
                                                            "/failed", at=workflow.now(),
                            payload={"to": r.id, "name": r.name_zh, "report_id": item.report_id, "version": item.version,
                                     "kind": item.kind, "label": item.label,
                                     "error": str(exc.cause or exc)[:500]}))
            item.done = True

    # ------------------------------------------------------------- the verbal report

    @workflow.update
    async def verbal(self, req: VerbalIn) -> ChainView:
        self.refuse_if("verbal", req)
        at = req.at or workflow.now()
        self.s.verbal = VerbalRecord(to_whom=req.to_whom, by_whom=req.by_whom, at=at, channel=req.channel,
                                     note=req.note, recorded_by=req.actor)
        late = self._meet("verbal", at, "口头报告", "verbal", req.actor)
        await self.record(Event(kind=Kinds.VERBAL_MADE, step_id="verbal", actor=req.actor, at=at,
                                payload={**self.s.verbal.model_dump(mode="json"), "on_time": not late}), *late)
        self._owe_upward("verbal", "口头报告", f"{self.info.incident_id}/verbal", 1)
        return self.view()

    @verbal.validator
    def _verbal_ok(self, req: VerbalIn) -> None:
        self.refuse_if("verbal", req)

    # ------------------------------------------------------------- 拉条: the department's report to its city department

    @workflow.update
    async def vertical(self, req: VerticalIn) -> ChainView:
        """The department also reported to its city department (垂直管理): the district should have got it at the same
        time; got later than the rules' `vertical_sync_within`, the gap is flagged (report.vertical.gap)."""
        self.refuse_if("vertical", req)
        district_at = self.s.unit_report.reported_at if self.s.unit_report else self.s.received_at
        gap = max(0, math.ceil((district_at - req.at).total_seconds()))
        self.s.vertical = VerticalRecord(to_whom=req.to_whom, at=req.at, note=req.note, district_at=district_at,
                                         gap_s=gap, recorded_by=req.actor)
        events = [Event(kind=Kinds.VERTICAL_MADE, step_id="vertical", actor=req.actor, at=workflow.now(),
                        payload=self.s.vertical.model_dump(mode="json"))]
        if gap > self.rules.vertical_sync_within.total_seconds():
            minutes = -(-gap // 60)
            events.append(Event(kind=Kinds.VERTICAL_GAP, step_id="vertical/gap", actor=req.actor, at=workflow.now(),
                                payload={"deadline": "vertical", "label": f"{self.info.reporting_unit}拉条报告",
                                         "to_whom": req.to_whom, "city_at": req.at.isoformat(),
                                         "district_at": district_at.isoformat(), "late_by_s": gap,
                                         "late_by_min": minutes, "mark": f"先报市级、晚报区{minutes}分钟"}))
        await self.record(*events)
        return self.view()

    @vertical.validator
    def _vertical_ok(self, req: VerticalIn) -> None:
        self.refuse_if("vertical", req)

    # ------------------------------------------------------------- written reports: draft, review, submit

    @workflow.update
    async def draft(self, req: DraftIn) -> ChainView:
        self.refuse_if("draft", req)
        if not self.s.reports:
            self.s.reports.append(WrittenReport(seq=0, kind="written", label="书面报告", deadline_key="written"))
        return await self._new_version(self.s.reports[-1], req)

    @draft.validator
    def _draft_ok(self, req: DraftIn) -> None:
        self.refuse_if("draft", req)

    @workflow.update
    async def followup(self, req: DraftIn) -> ChainView:
        return await self._next_report("followup", req)

    @followup.validator
    def _followup_ok(self, req: DraftIn) -> None:
        self.refuse_if("followup", req)

    @workflow.update
    async def final(self, req: DraftIn) -> ChainView:
        return await self._next_report("final", req)

    @final.validator
    def _final_ok(self, req: DraftIn) -> None:
        self.refuse_if("final", req)

    async def _next_report(self, kind: ReportKind, req: DraftIn) -> ChainView:
        self.refuse_if(kind, req)
        seq = len(self.s.reports)
        self.s.reports.append(WrittenReport(seq=seq, kind=kind, label=label_of(kind, seq), deadline_key=f"followup_{seq}"))
        return await self._new_version(self.s.reports[-1], req)

    async def _new_version(self, r: WrittenReport, req: DraftIn) -> ChainView:
        v = Version(version=len(r.versions) + 1, content=req.draft, by=req.actor, at=workflow.now())
        r.versions.append(v)
        r.state = "in_review"
        await self.record(Event(kind=Kinds.report(r.kind, "drafted"), step_id=f"report/{r.seq}/v{v.version}", actor=req.actor,
                                at=v.at, payload={"seq": r.seq, "label": r.label, "version": v.version,
                                                  "content": req.draft.model_dump(mode="json")}))
        return self.view()

    @workflow.update
    async def review(self, req: ReviewIn) -> ChainView:
        self.refuse_if("review", req)
        r, now = self.s.reports[-1], workflow.now()
        v = r.latest
        v.decision, v.reviewed_by, v.reviewed_at, v.comments = req.decision, req.actor, now, req.comments or None
        if req.decision == "approve":
            r.state, r.approved_by, r.approved_at = "approved", req.actor, now
            self.s.casualties = v.content.casualties  # the approved facts are the chain's facts
            if v.content.figures is not None:  # 灾情统计: the totals as of this report (a report without keeps them)
                self.s.figures = v.content.figures
            self.s.severity = max(self.s.severity, self.rules.grade(v.content.severity, v.content.casualties),
                                  key=lambda x: x.rank)
        else:
            r.state = "returned"
        await self.record(Event(kind=Kinds.report(r.kind, "approved" if req.decision == "approve" else "returned"),
                                step_id=f"report/{r.seq}/v{v.version}/review", actor=req.actor, at=now,
                                payload={"seq": r.seq, "label": r.label, "version": v.version, "comments": req.comments,
                                         "severity": self.s.severity.value}))
        if req.decision == "approve":
            await self._check_triggers()
        return self.view()

    @review.validator
    def _review_ok(self, req: ReviewIn) -> None:
        self.refuse_if("review", req)

    @workflow.update
    async def submit(self, req: SubmitIn) -> ChainView:
        self.refuse_if("submit", req)
        r, now = self.s.reports[-1], workflow.now()
        r.state, r.submitted_by, r.submitted_at = "submitted", req.actor, now
        if r.kind == "final":  # the next report's limit, met by the final report: the final report's limit
            next(d for d in self.s.deadlines if d.key == r.deadline_key).label = FINAL_LABEL
        late = self._meet(r.deadline_key, now, r.label, r.kind, req.actor)
        if r.kind == "final":
            self.s.closed_at = now
        else:
            seq = r.seq + 1
            self.s.deadlines.append(self._deadline(f"followup_{seq}", "followup", label_of("followup", seq),
                                                   now + self.rules.followup_every[self.s.severity]))
        await self.record(Event(kind=Kinds.report(r.kind, "submitted"), step_id=f"report/{r.seq}/submitted", actor=req.actor,
                                at=now, payload={"seq": r.seq, "label": r.label, "version": r.latest.version,
                                                 "approved_by": r.approved_by, "on_time": not late}), *late)
        await self._escalate("receipts", str(r.seq), r.label, self.rules.receipt_policy, "", report=r)
        self._owe_upward(r.kind, r.label, f"{self.info.incident_id}/{r.seq}", r.latest.version, seq=r.seq)
        return self.view()

    @submit.validator
    def _submit_ok(self, req: SubmitIn) -> None:
        self.refuse_if("submit", req)

    def _rules_context(self) -> Chain:
        return Chain(self.s, self.rules)

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
            await self.record(Event(kind=Kinds.TRIGGER, step_id=f"trigger/{t.id}", at=workflow.now(),
                                    payload={"trigger": t.id, "name": t.name_zh, "call": t.call,
                                             "casualties": c.model_dump(), "severity": self.s.severity.value}))
            await self._escalate("trigger", t.id, t.name_zh, t.policy, t.call, text=text)

    # ------------------------------------------------------------- escalation episodes (the shared interpreter)

    async def _escalate(self, kind: Literal["overdue", "receipts", "trigger"], ref: str, label: str, policy: str,
                        call: str, text: str = "", report: WrittenReport | None = None) -> None:
        found: TargetsResult = await workflow.execute_activity(
            Reporting.TARGETS, TargetsRequest(purpose=kind, incident=self.info, rules=self.rules, call=call,
                                              policy=policy), result_type=TargetsResult, **ACTIVITY)
        if kind == "overdue" and next(d for d in self.s.deadlines if d.key == ref).met_at is not None:
            return  # the report came while we looked for whom to call
        if self.s.settled_by is not None or (kind == "overdue" and next(
                d for d in self.s.deadlines if d.key == ref).settled is not None):
            return  # settled while we looked (漏报, the chain ended): nobody is called any more
        if found.gaps or not found.targets:
            await self.record(Event(kind=Kinds.gap(kind), step_id=f"{kind}/{ref}/gap", at=workflow.now(),
                                    payload={"label": label, "gaps": found.gaps or ["nobody to call"]}))
        if found.targets:
            self.start_escalation(kind, ref, {policy: self.rules.policies[policy]}, found.targets, label=label, text=text)

    async def _flush(self, ep: Episode, actions: Actions) -> FlushResult:
        report = next((r for r in self.s.reports if ep.kind == "receipts" and str(r.seq) == ep.ref), None)
        due = next((d.due_at for d in self.s.deadlines if ep.kind == "overdue" and d.key == ep.ref), None)
        return await self.call(Reporting.FLUSH, lambda: FlushRequest(
            record=self._record_request([]), episode=ep.name, kind=ep.kind, ref=ep.ref, label=ep.label, text=ep.text,
            report=report, due_at=due, sends=actions.sends, records=actions.records,
            copies=[r.id for r in self.rules.recipients if r.cc]), result_type=FlushResult)

    # ------------------------------------------------------------- settled by the end of the response or the review

    @workflow.update
    async def settle(self, req: SettleIn) -> ChainView:
        """The review was signed off (`req.end`): every limit still open is closed (`settle_as`: 漏报, or 未报(已终止)
        when not yet due), late ones stay late, every call stops and the chain ends. The response was terminated (not
        `req.end`): what is past its limit is 漏报 and no longer chased; the next follow-up's limit becomes the final
        report's (终报, still owed); the chain ends only if nothing is left open. Idempotent: a closed chain answers."""
        await workflow.wait_condition(lambda: self.opened)
        if self.s.closed_at is not None:
            return self.view()
        now = workflow.now()
        why = "应急响应已终止" if req.by.startswith("activation/") else "复盘报告已签发"
        events = []
        for d in self.s.deadlines:
            if d.met_at is not None or d.settled is not None:
                continue
            if req.end or now >= d.due_at:
                d.settled = settle_as(d, now)
                self.stop_episodes(lambda ep, key=d.key: ep.kind == "overdue" and ep.ref == key, f"{why},{d.label}记为漏报")
                events.append(Event(kind=Kinds.deadline(d.kind, d.settled), step_id=f"deadline/{d.key}/{d.settled}",
                                    actor=req.actor, at=now, payload={"deadline": d.key, "label": d.label,
                                                                      "due_at": d.due_at.isoformat(), "settled_by": req.by}))
            elif d.kind == "followup":
                d.label = FINAL_LABEL  # the response has ended: the report owed next is the final report
        still_open = [d.key for d in self.s.deadlines if d.met_at is None and d.settled is None]
        ends = req.end or not still_open
        if ends:
            self.s.closed_at, self.s.settled_by = now, req.by
            self.stop_episodes(lambda ep: True, f"{why},信息报送已办结")
        else:
            self.s.response_ended_by = req.by
            self.changed = True  # new labels, fewer timers
        keys = {v: [d.key for d in self.s.deadlines if d.settled == v] for v in ("omitted", "lapsed")}
        events.append(Event(kind=Kinds.SETTLED, step_id=f"settled/{req.by}", actor=req.actor, at=now, payload={
            "by": req.by, "reason": req.reason or why, "ended": ends, "open": still_open, **keys,
            "late": [d.key for d in self.s.deadlines if d.late_by_s]}))
        await self.record(*events)
        return self.view()

    # ------------------------------------------------------------- the end: what was never reported is omitted 漏报

    async def _finish(self) -> None:
        await workflow.wait_condition(workflow.all_handlers_finished)
        for d in self.s.deadlines:
            if d.met_at is None and d.settled is None:  # e.g. a verbal report never recorded: 漏报
                d.settled = "omitted"
                self.stop_episodes(lambda ep: ep.kind == "overdue" and ep.ref == d.key, "信息报送已终报结束")
                await self.record(Event(kind=Kinds.deadline(d.kind, "omitted"), step_id=f"deadline/{d.key}/omitted",
                                        at=workflow.now(), payload={"deadline": d.key, "label": d.label,
                                                                    "due_at": d.due_at.isoformat()}))
        await self.episodes_finished()  # receipts of the final report, calls still running
        late = [d.key for d in self.s.deadlines if d.late_by_s]
        await self.record(Event(kind=Kinds.CLOSED, step_id="closed", at=workflow.now(), payload={
            "deadlines": len(self.s.deadlines), "late": late,
            "omitted": [d.key for d in self.s.deadlines if d.met_at is None and d.settled != "lapsed"],
            "lapsed": [d.key for d in self.s.deadlines if d.settled == "lapsed"], "settled_by": self.s.settled_by,
            "reports": [r.label for r in self.s.reports]}))

    # ------------------------------------------------------------- what it shows

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
                         severity=self.s.severity, casualties=self.s.casualties, figures=self.s.figures, deadlines=self.s.deadlines,
                         verbal=self.s.verbal, reports=self.s.reports, triggers=triggers, closed_at=self.s.closed_at,
                         runs=self.s.runs, settled_by=self.s.settled_by, response_ended_by=self.s.response_ended_by,
                         unit_report=self.s.unit_report, vertical=self.s.vertical)

    def _deadline(self, key: str, kind: str, label: str, due: datetime) -> Deadline:
        return Deadline(key=key, kind=kind, label=label, due_at=due, remind_at=due - self.rules.reminder_before)  # type: ignore[arg-type]

    def _opening(self) -> dict:
        d = {x.key: x.due_at.isoformat() for x in self.s.deadlines}
        unit = {"unit_report": self.s.unit_report.model_dump(mode="json")} if self.s.unit_report else {}
        skip = {"created_by"} | ({"figures"} if self.info.figures is None else set())
        return {**self.info.model_dump(mode="json", exclude=skip), **unit, "severity": self.s.severity.value,
                "rules": self.rules.id, "rules_version": self.inp.rules_version, "deadlines": d}

    def _record_request(self, events: list[Event]) -> RecordRequest:
        return RecordRequest(workflow_id=workflow.info().workflow_id, run_id=workflow.info().run_id, incident=self.info,
                             rules_id=self.rules.id, rules_version=self.inp.rules_version, events=events, view=self.view())
