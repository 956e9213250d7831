"""The work order's workflow: one per hotline ticket (the procedure: workflows/workorder/__init__.py)."""
from __future__ import annotations

import math
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():  # the kit and the messages: one copy, inside and outside the sandbox
    from definitions.schema.calendar import WEEKDAYS_ONLY, add_working_days
    from workflows.common import ACTIVITY, INVALID, Event, activity_options
    from workflows.escalation import Actions, FlushResult, Record
    from workflows.kit.episodes import Episode
    from workflows.kit.events import WorkOrder as Kinds
    from workflows.kit.names import WorkOrder
    from workflows.kit.procedure import Procedure
    from workflows.workorder.models import (
        STATUS_ZH, STEP_ZH, WORKFLOW_TYPE, AssignIn, Assignment, CloseIn, CompleteIn, Deadline, Feedback, FeedbackIn,
        FlushRequest, IncidentLinkIn, NotifyRequest, PostRequest, PostResult, RecordRequest, ReturnIn, SatisfactionIn,
        SignIn, UnitRequest, UnitResult, Visit, WorkOrderInput, WorkOrderState, WorkOrderView)
    from workflows.workorder.rules import RULES, Order, acts_for_unit

ANSWER_CHANNELS = ("sms", "voice", "im", "link", "reply", "ivr", "proxy")  # how a signing call is answered
POST_OPTIONS = activity_options(start_to_close=timedelta(minutes=1))  # the hotline platform: retried until it answers


def late_text(seconds: int) -> str:
    minutes = -(-seconds // 60)
    if minutes < 60:
        return f"{minutes}分钟"
    hours, rest = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}小时" + (f"{rest}分钟" if rest else "")
    days, hours = divmod(hours, 24)
    return f"{days}天" + (f"{hours}小时" if hours else "")


@workflow.defn(name=WORKFLOW_TYPE)
class WorkOrderWorkflow(Procedure):
    RECORD = WorkOrder.RECORD
    RULES = RULES

    @workflow.init
    def __init__(self, inp: WorkOrderInput) -> None:
        self.inp, self.rules = inp, inp.rules
        if inp.state is not None:
            self.s, self.info = inp.state, inp.info
        else:
            received = inp.info.received_at or workflow.now()
            self.info = inp.info.model_copy(update={"received_at": received})
            self.s = WorkOrderState(received_at=received)
        self._init_procedure()

    @workflow.run
    async def run(self, inp: WorkOrderInput) -> WorkOrderView:
        if inp.state is None:
            i = self.info
            await self.record(Event(kind=Kinds.RECEIVED, step_id="received", actor=i.created_by, at=self.s.received_at,
                                    payload={**i.model_dump(mode="json", exclude={"caller_phone", "created_by"}),
                                             "caller_phone": bool(i.caller_phone), "rules": self.rules.id,
                                             "rules_version": self.inp.rules_version}))
        else:
            await self.record(Event(kind=Kinds.CONTINUED, step_id=f"continued/{self.s.runs}", at=workflow.now(),
                                    payload={"run": self.s.runs}))
        self.resume_episodes()
        while self.s.ended_at is None:
            await self._deadlines_due()
            await self._visit()
            if self.s.ended_at is not None:
                break
            if self.history_is_long():
                await self.continue_as_new(info=self.info)
            await self.sleep_until_next(self._next_times(), until=lambda: self.s.ended_at is not None)
        await workflow.wait_condition(workflow.all_handlers_finished)
        self.stop_episodes(lambda ep: True, "工单已办结回访")
        await self.episodes_finished()
        await self.record(Event(kind=Kinds.ENDED, step_id="ended", at=workflow.now(), payload=self._summary()))
        return self.view()

    # ------------------------------------------------------------- deadlines: overdue marks, 督办

    def _active(self) -> Assignment | None:
        a = self.s.current
        return a if a is not None and self.s.status in ("assigned", "signed", "sent_back") else None

    def _next_times(self) -> list[datetime]:
        times = []
        a = self._active()
        if a is not None:
            times += [d.due_at for d in a.deadlines if d.met_at is None and d.overdue_at is None]
        v = self.s.visits[-1] if self.s.visits else None
        if self.s.status == "closed" and v is not None and v.posted_at is not None and v.satisfaction is None:
            times.append(v.posted_at + self.rules.visit_wait)
        return times

    async def _deadlines_due(self) -> None:
        a = self._active()
        if a is None:
            return
        for d in a.deadlines:
            now = workflow.now()
            if d.met_at is not None or d.overdue_at is not None or now < d.due_at:
                continue
            d.overdue_at = now
            await self.record(Event(kind=Kinds.step(d.key, "overdue"), step_id=f"a{a.seq}/{d.key}/overdue/{a.sent_back}",
                                    at=d.due_at, payload={"seq": a.seq, "unit_id": a.unit_id, "unit": a.unit_name,
                                                          "deadline": d.key, "label": d.label,
                                                          "due_at": d.due_at.isoformat()}))
            if d.key != "sign" and self._active() is a and d.met_at is None:  # 督办: signing has its own call
                found: UnitResult = await workflow.execute_activity(
                    WorkOrder.UNIT, UnitRequest(unit_id=a.unit_id, rules=self.rules, policy=self.rules.overdue_policy),
                    result_type=UnitResult, **ACTIVITY)
                if found.targets and self._active() is a and d.met_at is None:
                    self.start_escalation("overdue", f"{a.seq}/{d.key}/{a.sent_back}",
                                          {self.rules.overdue_policy: self.rules.policies[self.rules.overdue_policy]},
                                          found.targets, label=f"{d.label}督办", due_at=d.due_at)

    def _meet(self, a: Assignment, key: str, at: datetime, actor: str) -> list[Event]:
        """A limit is met: how long it took, and a permanent late mark if it was late."""
        d = a.deadline(key)
        if d.met_at is not None:
            return []
        d.met_at, d.late_by_s = at, max(0, math.ceil((at - d.due_at).total_seconds()))
        self.stop_episodes(lambda ep: ep.kind == "overdue" and ep.ref.startswith(f"{a.seq}/{key}/"), f"工单已{d.label}")
        self.changed = True
        if not d.late_by_s:
            return []
        return [Event(kind=Kinds.step(key, "late"), step_id=f"a{a.seq}/{key}/late/{a.sent_back}", actor=actor, at=at,
                      payload={"seq": a.seq, "unit_id": a.unit_id, "unit": a.unit_name, "deadline": key,
                               "label": d.label, "due_at": d.due_at.isoformat(), "met_at": at.isoformat(),
                               "late_by_s": d.late_by_s, "mark": f"逾期{d.label}{late_text(d.late_by_s)}"})]

    # ------------------------------------------------------------- 分拨 / 改派

    @workflow.update
    async def assign(self, req: AssignIn) -> WorkOrderView:
        self.refuse_if("assign", req)
        found: UnitResult = await workflow.execute_activity(
            WorkOrder.UNIT, UnitRequest(unit_id=req.unit_id, rules=self.rules, policy=self.rules.sign_policy),
            result_type=UnitResult, **ACTIVITY)
        if not found.found:
            raise ApplicationError(f"单位{req.unit_id}不在通讯录中 / unit_id: {req.unit_id!r} is not a department or town "
                                   "in the directory", type=INVALID, non_retryable=True)
        self.refuse_if("assign", req)  # again: another step may have come while the unit was looked up
        now, prev = workflow.now(), self.s.current
        if prev is not None and prev.returned_at is None:  # 改派 before it was signed: the old unit's call stops
            self.stop_episodes(lambda ep: ep.ref.split("/")[0] == str(prev.seq), "工单已改派其他单位")
        limits = self.rules.limits(self.info.category, self.info.urgency)
        complete = (now + limits.complete if limits.complete is not None else
                    add_working_days(now, limits.complete_working_days, self.rules.utc_offset_hours,
                                     self.inp.calendar or WEEKDAYS_ONLY))
        a = Assignment(seq=len(self.s.assignments) + 1, unit_id=req.unit_id, unit_name=found.unit_name,
                       contact=found.contact, answerers=found.answerers, assigned_at=now, assigned_by=req.actor,
                       note=req.note, deadlines=[
                           Deadline(key="sign", label=STEP_ZH["sign"], due_at=now + limits.sign),
                           Deadline(key="feedback", label=STEP_ZH["feedback"], due_at=now + limits.feedback),
                           Deadline(key="complete", label=STEP_ZH["complete"], due_at=complete)])
        self.s.assignments.append(a)
        self.s.status = "assigned"
        events = [Event(kind=Kinds.ASSIGNED, step_id=f"a{a.seq}/assigned", actor=req.actor, at=now, payload={
            "seq": a.seq, "unit_id": a.unit_id, "unit": a.unit_name, "contact": a.contact, "note": a.note,
            "proposed": self.info.proposed_unit, "as_proposed": self.info.proposed_unit == a.unit_id,
            "reassigned": prev is not None, "deadlines": {d.key: d.due_at.isoformat() for d in a.deadlines}})]
        if found.gaps or not found.targets:
            events.append(Event(kind=Kinds.GAP, step_id=f"a{a.seq}/gap", at=now,
                                payload={"seq": a.seq, "unit_id": a.unit_id, "gaps": found.gaps or ["nobody to call"]}))
        await self.record(*events)
        if found.targets and self.s.current is a and a.signed_at is None:
            self.start_escalation("sign", str(a.seq), {self.rules.sign_policy: self.rules.policies[self.rules.sign_policy]},
                                  found.targets, label=f"签收:{a.unit_name}", due_at=a.deadline("sign").due_at)
        if not self.s.fire_copied and self.rules.copies_fire(self.info.category, self.info.source, self.info.urgency):
            self.s.fire_copied = True  # 抄报消防救援, once
            await self.call(WorkOrder.NOTIFY, lambda: NotifyRequest(record=self._record_request([]),
                                                                    unit_id=self.rules.fire_copy.unit, rules=self.rules))
        return self.view()

    @assign.validator
    def _assign_ok(self, req: AssignIn) -> None:
        self.refuse_if("assign", req)

    # ------------------------------------------------------------- 签收, 退回

    def _sign(self, a: Assignment, at: datetime, by: str, via: str | None, on_behalf: bool) -> list[Event]:
        a.signed_at, a.signed_by, a.signed_via = at, by, via
        if self.s.status == "assigned":
            self.s.status = "signed"
        self.stop_episodes(lambda ep: ep.kind == "sign" and ep.ref == str(a.seq), f"{a.unit_name}已签收")
        d = a.deadline("sign")
        late = self._meet(a, "sign", at, by)
        channel = via if via in ANSWER_CHANNELS else None  # signed on the console, by feedback: no channel
        return [Event(kind=Kinds.SIGNED, step_id=f"a{a.seq}/signed", actor=by, channel=channel, at=at, payload={
            "seq": a.seq, "unit_id": a.unit_id, "unit": a.unit_name, "via": via, "on_behalf": on_behalf,
            "due_at": d.due_at.isoformat(), "on_time": not late}), *late]

    @workflow.update
    async def sign(self, req: SignIn) -> WorkOrderView:
        self.refuse_if("sign", req)
        a = self.s.current
        await self.record(*self._sign(a, workflow.now(), req.actor, req.channel, not acts_for_unit(self._ctx(), req)))
        return self.view()

    @sign.validator
    def _sign_ok(self, req: SignIn) -> None:
        self.refuse_if("sign", req)

    @workflow.update(name="return")
    async def return_(self, req: ReturnIn) -> WorkOrderView:
        self.refuse_if("return", req)
        a, now = self.s.current, workflow.now()
        a.returned_at, a.returned_by, a.return_reason = now, req.actor, req.reason
        self.s.status = "returned"
        self.stop_episodes(lambda ep: ep.ref.split("/")[0] == str(a.seq), "工单已退回")
        await self.record(Event(kind=Kinds.RETURNED, step_id=f"a{a.seq}/returned", actor=req.actor, at=now, payload={
            "seq": a.seq, "unit_id": a.unit_id, "unit": a.unit_name, "reason": req.reason,
            "on_behalf": not acts_for_unit(self._ctx(), req)}))
        return self.view()

    @return_.validator
    def _return_ok(self, req: ReturnIn) -> None:
        self.refuse_if("return", req)

    # ------------------------------------------------------------- 反馈, 办结

    @workflow.update
    async def feedback(self, req: FeedbackIn) -> WorkOrderView:
        self.refuse_if("feedback", req)
        a, now = self.s.current, workflow.now()
        on_behalf = not acts_for_unit(self._ctx(), req)
        events = self._sign(a, now, req.actor, "feedback", on_behalf) if a.signed_at is None else []
        late = self._meet(a, "feedback", now, req.actor)
        self.s.feedback.append(Feedback(at=now, by=req.actor, kind="progress", text=req.text, on_behalf=on_behalf,
                                        late=bool(late)))
        events.append(Event(kind=Kinds.FEEDBACK, step_id=f"feedback/{len(self.s.feedback)}", actor=req.actor, at=now,
                            payload={"seq": a.seq, "unit_id": a.unit_id, "text": req.text, "on_behalf": on_behalf,
                                     "n": len(self.s.feedback)}))
        await self.record(*events, *late)
        return self.view()

    @feedback.validator
    def _feedback_ok(self, req: FeedbackIn) -> None:
        self.refuse_if("feedback", req)

    @workflow.update
    async def complete(self, req: CompleteIn) -> WorkOrderView:
        self.refuse_if("complete", req)
        a, now = self.s.current, workflow.now()
        on_behalf = not acts_for_unit(self._ctx(), req)
        events = self._sign(a, now, req.actor, "complete", on_behalf) if a.signed_at is None else []
        late = self._meet(a, "feedback", now, req.actor) + self._meet(a, "complete", now, req.actor)
        self.s.feedback.append(Feedback(at=now, by=req.actor, kind="result", text=req.result, on_behalf=on_behalf,
                                        late=any(e.kind == Kinds.step("complete", "late") for e in late)))
        self.s.result, self.s.completed_at, self.s.status = req.result, now, "completed"
        self.stop_episodes(lambda ep: ep.ref.split("/")[0] == str(a.seq), "工单已办结")
        events.append(Event(kind=Kinds.COMPLETED, step_id=f"a{a.seq}/completed/{a.sent_back}", actor=req.actor, at=now,
                            payload={"seq": a.seq, "unit_id": a.unit_id, "unit": a.unit_name, "result": req.result,
                                     "on_behalf": on_behalf, "due_at": a.deadline("complete").due_at.isoformat(),
                                     "on_time": not a.deadline("complete").late_by_s}))
        await self.record(*events, *late)
        return self.view()

    @complete.validator
    def _complete_ok(self, req: CompleteIn) -> None:
        self.refuse_if("complete", req)

    # ------------------------------------------------------------- the duty office checks: 办结 or 退回重办

    @workflow.update
    async def close(self, req: CloseIn) -> WorkOrderView:
        self.refuse_if("close", req)
        a, now = self.s.current, workflow.now()
        if req.decision == "send_back":
            a.sent_back += 1
            d = a.deadline("complete")
            d.met_at, d.late_by_s = None, None  # the completion was not accepted: it is owed again (a late mark stays)
            self.s.status, self.s.completed_at = "sent_back", None
            self.s.sent_back_reasons.append(req.reason)
            await self.record(Event(kind=Kinds.SENT_BACK, step_id=f"a{a.seq}/sent_back/{a.sent_back}", actor=req.actor,
                                    at=now, payload={"seq": a.seq, "unit_id": a.unit_id, "unit": a.unit_name,
                                                     "reason": req.reason, "n": a.sent_back}))
            return self.view()
        self.s.status, self.s.closed_at, self.s.closed_by = "closed", now, req.actor
        self.s.visits.append(Visit(version=len(self.s.visits) + 1, result=self.s.result or ""))
        await self.record(Event(kind=Kinds.CLOSED, step_id="closed", actor=req.actor, at=now, payload={
            "seq": a.seq, "unit_id": a.unit_id, "unit": a.unit_name, "result": self.s.result,
            "late": [d.key for d in a.deadlines if d.late_by_s], "returned": sum(x.returned_at is not None
                                                                                for x in self.s.assignments)}))
        return self.view()

    @close.validator
    def _close_ok(self, req: CloseIn) -> None:
        self.refuse_if("close", req)

    # ------------------------------------------------------------- 回访: the result to the hotline platform, its answer

    async def _visit(self) -> None:
        if self.s.status != "closed" or not self.s.visits:
            return
        v = self.s.visits[-1]
        if v.posted_at is None:
            async with self.io:  # one write at a time, as `call` does, with the platform's own retries
                posted: PostResult = await workflow.execute_activity(
                    WorkOrder.POST, PostRequest(record=self._record_request([]), version=v.version),
                    result_type=PostResult, **POST_OPTIONS)
            v.posted_at, v.receipt = posted.posted_at, posted.receipt
            await self.record(Event(kind=Kinds.VISIT_POSTED, step_id=f"visit/{v.version}/posted", at=posted.posted_at,
                                    payload={"version": v.version, "ticket": self.info.ticket, "receipt": posted.receipt,
                                             "duplicate": posted.duplicate}))
        if v.satisfaction is None and workflow.now() >= v.posted_at + self.rules.visit_wait:
            v.satisfaction, v.answered_at = "未回访", workflow.now()
            self.s.status, self.s.ended_at = "visited", workflow.now()
            await self.record(Event(kind=Kinds.VISIT_UNANSWERED, step_id=f"visit/{v.version}/unanswered",
                                    at=workflow.now(), payload={"version": v.version}))

    @workflow.update
    async def satisfaction(self, req: SatisfactionIn) -> WorkOrderView:
        self.refuse_if("satisfaction", req)
        v, now = self.s.visits[-1], workflow.now()
        v.satisfaction, v.comment, v.answered_at = req.satisfaction, req.comment, now
        self.s.status = "visited"
        await self.record(Event(kind=Kinds.VISIT_ANSWERED, step_id=f"visit/{v.version}/answered", actor=req.actor,
                                at=now, payload={"version": v.version, "satisfaction": req.satisfaction,
                                                 "comment": req.comment}))
        self.s.ended_at = now
        return self.view()

    @satisfaction.validator
    def _satisfaction_ok(self, req: SatisfactionIn) -> None:
        self.refuse_if("satisfaction", req)

    # ------------------------------------------------------------- a 110/119/120 notice becomes an incident

    @workflow.update
    async def link_incident(self, req: IncidentLinkIn) -> WorkOrderView:
        self.refuse_if("incident", req)
        self.s.incident_id, now = req.incident_id, workflow.now()
        payload = {"incident_id": req.incident_id, "workorder": self.info.id, "source": self.info.source,
                   "ticket": self.info.ticket, "category": self.info.category}
        await self.call(self.RECORD, lambda: self._record_request(
            [Event(kind=Kinds.INCIDENT_LINKED, step_id="incident", actor=req.actor, at=now, payload=payload)],
            incident=[Event(kind=Kinds.INCIDENT_FROM, step_id=f"{self.info.id}/incident", actor=req.actor, at=now,
                            payload=payload)]))
        self.changed = True
        return self.view()

    @link_incident.validator
    def _link_ok(self, req: IncidentLinkIn) -> None:
        self.refuse_if("incident", req)

    # ------------------------------------------------------------- the signing call and 督办 (the shared interpreter)

    async def _flush(self, ep: Episode, actions: Actions) -> FlushResult:
        events: list[Event] = []
        for r in actions.records:  # an answer to the signing call is the unit's 签收
            events += self._on_record(ep, r)
        return await self.call(WorkOrder.FLUSH, lambda: FlushRequest(
            record=self._record_request(events), episode=ep.name, kind=ep.kind, ref=ep.ref, label=ep.label,
            sends=actions.sends, records=actions.records), result_type=FlushResult)

    def _on_record(self, ep: Episode, r: Record) -> list[Event]:
        if ep.kind != "sign" or r.kind != "ack":
            return []
        a = next((x for x in self.s.assignments if str(x.seq) == ep.ref), None)
        if a is None or a.signed_at is not None or a.returned_at is not None or self.s.current is not a:
            return []
        by = r.person_id or r.actor
        return self._sign(a, r.at, by, r.channel, by not in a.answerers)

    # ------------------------------------------------------------- what it shows

    @workflow.update
    async def opened_view(self) -> WorkOrderView:
        """Returns once the order is stored: the API answers `POST /api/workorders` with it."""
        await workflow.wait_condition(lambda: self.opened)
        return self.view()

    @workflow.query
    def state(self) -> WorkOrderView:
        return self.view()

    def _ctx(self) -> Order:
        return Order(self.s, self.rules, self.info)

    def _rules_context(self) -> Order:
        return self._ctx()

    def view(self) -> WorkOrderView:
        esc = None
        a = self.s.current
        ep = next((e for e in reversed(self.s.episodes) if a is not None and e.kind == "sign" and e.ref == str(a.seq)), None)
        if ep is not None:
            ts = next(iter(ep.esc.targets.values()), None)
            esc = "stopped" if ep.stop and (ts is None or ts.state != "acknowledged") else (ts.state if ts else None)
        return WorkOrderView(id=self.info.id, workflow_id=workflow.info().workflow_id, info=self.info, status=self.s.status,
                             status_zh=STATUS_ZH[self.s.status], received_at=self.s.received_at,
                             assignments=self.s.assignments, feedback=self.s.feedback, result=self.s.result,
                             completed_at=self.s.completed_at, closed_at=self.s.closed_at, closed_by=self.s.closed_by,
                             sent_back_reasons=self.s.sent_back_reasons, visits=self.s.visits,
                             incident_id=self.s.incident_id, fire_copied=self.s.fire_copied, ended_at=self.s.ended_at,
                             sign_escalation=esc, runs=self.s.runs)

    def _summary(self) -> dict:
        return {"assignments": len(self.s.assignments),
                "returned": sum(a.returned_at is not None for a in self.s.assignments),
                "late": [f"a{a.seq}/{d.key}" for a in self.s.assignments for d in a.deadlines if d.late_by_s],
                "satisfaction": self.s.visits[-1].satisfaction if self.s.visits else None,
                "incident_id": self.s.incident_id}

    def _record_request(self, events: list[Event], incident: list[Event] | None = None) -> RecordRequest:
        return RecordRequest(workflow_id=workflow.info().workflow_id, run_id=workflow.info().run_id,
                             rules_id=self.rules.id, rules_version=self.inp.rules_version, events=events,
                             view=self.view(), incident_events=incident or [])
