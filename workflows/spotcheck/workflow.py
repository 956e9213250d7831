"""The spot check's workflow: one per call-out (the procedure: workflows/spotcheck/__init__.py)."""
from __future__ import annotations

import asyncio
import dataclasses
from datetime import timedelta
from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():  # the messages: one copy, inside and outside the sandbox
    from workflows.kit.events import SpotCheck as Kinds  # the audit event kinds, defined once
    from workflows.callout import ShardEvents
    from workflows.common import ACTIVITY, Actor, Event
    from workflows.duty import duty_flush, flusher, run_escalation, stop_escalation
    from workflows.escalation import Ack, Actions, Escalation, Inbox, Report, Send, record_late_answers
    from workflows.kit.names import Duty
    from workflows.spotcheck.models import (
        CLOSE_AFTER_ANSWERS, AnswerIn, FollowupView, Opened, OpenRequest, PersonView, RecordRequest, ResolveIn, Sampled,
        SpotCheckInput, SpotCheckView, late_answer_payload)
    from workflows.spotcheck.rules import RULES, Check


class FollowupEpisode:
    """A follow-up's call: its view and its escalation, driven by `run_escalation` (workflows/duty.py).

    Not the kit's Episode (workflows/kit/episodes.py): the kit flushes under the write lock and tells whoever
    was reached when it stops, where a follow-up stops silently at the close and flushes its "resolved"
    message without the lock; moving it would change the commands of running checks."""

    def __init__(self, view: FollowupView, esc: Escalation) -> None:
        self.view, self.esc, self.inbox = view, esc, Inbox()
        self.task: asyncio.Task | None = None

    @property
    def name(self) -> str:
        return f"followup/{self.view.key}"

    @property
    def running(self) -> bool:
        return self.task is not None and not self.task.done()


@workflow.defn
class SpotCheckWorkflow:
    @workflow.init
    def __init__(self, inp: SpotCheckInput) -> None:
        self.inp, self.settings = inp, inp.settings
        self.v = SpotCheckView(check_id="", callout_id=inp.callout_id,
                               questions=[q.model_dump() for q in inp.settings.questions])
        self.sampled: dict[str, Sampled] = {}
        self.calls: Escalation | None = None
        self.calls_inbox = Inbox()
        self.followups: dict[str, FollowupEpisode] = {}
        self.pending: list = []
        self.refs: list[str] = []
        self.tasks: dict[str, asyncio.Task] = {}  # late answers being recorded
        self.io = asyncio.Lock()
        self.changed = False
        self.closing = False
        self.answering = 0  # `answer` updates past their refusal check and not yet done
        self.close_waits_for_answers = False

    @workflow.run
    async def run(self, inp: SpotCheckInput) -> SpotCheckView:
        self.v.check_id = workflow.info().workflow_id
        if inp.not_before is not None and inp.not_before > workflow.now():  # the call-out's end + the delay
            await workflow.sleep(inp.not_before - workflow.now())
        opened = await self._open()  # the sample of the persons who acknowledged the call-out
        if opened.status == "skipped":
            return await self._skip(opened)
        await self._sampled(opened)
        calls = self._call(opened)  # each sampled person called with the six questions
        await self._follow_up(calls)  # answers, follow-ups and their deadlines, until the check closes
        await self._close(calls)
        return self.v

    async def _open(self) -> Opened:
        inp, v = self.inp, self.v
        opened: Opened = await workflow.execute_activity(
            Duty.SPOTCHECK_OPEN, OpenRequest(check_id=v.check_id, run_id=workflow.info().run_id, callout_id=inp.callout_id,
                                             settings=inp.settings, version=inp.version, started_by=inp.started_by),
            result_type=Opened, **ACTIVITY)
        v.title, v.level, v.opened_at = opened.title, opened.level, workflow.now()
        return opened

    async def _skip(self, opened: Opened) -> SpotCheckView:
        v = self.v
        v.status, v.closed_at = "skipped", workflow.now()
        await self._record(Event(kind=Kinds.SKIPPED, step_id="skipped", at=workflow.now(),
                                 payload={"callout_id": self.inp.callout_id, "reason": opened.reason}))
        return v

    async def _sampled(self, opened: Opened) -> None:
        inp, v = self.inp, self.v
        v.status = "running"
        for s in opened.sampled:
            self.sampled[s.person_id] = s
            v.persons.append(PersonView(person_id=s.person_id, name=s.name, label=s.label, village_id=s.village_id,
                                        town_id=s.town_id))
        await self._record(Event(kind=Kinds.OPENED, step_id="opened", actor=inp.started_by, at=workflow.now(),
                                 payload={"callout_id": inp.callout_id, "title": opened.title, "level": opened.level,
                                          "candidates": opened.candidates, "settings_version": inp.version,
                                          "sample": [{"person_id": s.person_id, "name": s.name, "village": s.village_name,
                                                      "town": s.town_name} for s in opened.sampled],
                                          "questions": [q.id for q in inp.settings.questions]}))

    def _call(self, opened: Opened) -> asyncio.Task:
        wid = self.v.check_id
        # an answer being recorded (its audit event written, its follow-up not yet opened) holds the close: a
        # "no" must open its follow-up, not arrive to a check that closed because the calls had just ended
        self.close_waits_for_answers = workflow.patched(CLOSE_AFTER_ANSWERS)
        self.calls = Escalation.start(f"{wid}/calls", {"call": self.settings.policy}, [s.target for s in opened.sampled])
        self._deliver(self.pending)
        self.pending = []
        return asyncio.create_task(run_escalation(
            self.calls, self.calls_inbox, "spotcheck", wid, "calls", self._context, until=lambda: self.closing,
            before=self._react_calls, io=self.io))

    async def _follow_up(self, calls: asyncio.Task) -> None:
        """Until the settings' time to close, or every call ended and every follow-up settled: a follow-up past
        its deadline is overdue (the duty chief told)."""
        close_at = workflow.now() + self.settings.close_after
        while True:
            now = workflow.now()
            for ep in self.followups.values():
                f = ep.view
                if not f.overdue and f.status in ("open", "acknowledged") and now >= f.due_at:
                    await self._overdue(ep)
            if now >= close_at or self._done(calls):
                return
            dues = [ep.view.due_at for ep in self.followups.values()
                    if not ep.view.overdue and ep.view.status in ("open", "acknowledged")]
            timeout = max(min([close_at, *dues]) - now, timedelta(0))
            self.changed = False
            try:
                await workflow.wait_condition(lambda: self.changed or self._done(calls), timeout=timeout)
            except asyncio.TimeoutError:
                pass

    async def _close(self, calls: asyncio.Task) -> None:
        v = self.v
        self.closing = True
        await workflow.wait_condition(workflow.all_handlers_finished)
        await calls
        for ep in self.followups.values():
            if ep.task is not None:
                await ep.task
        await asyncio.gather(*self.tasks.values())
        for ep in self.followups.values():
            if ep.view.status in ("open", "acknowledged"):
                ep.view.status = "unresolved"
                await self._record(Event(kind=Kinds.FOLLOWUP_UNRESOLVED, step_id=f"followup/{ep.view.key}/unresolved",
                                         at=workflow.now(), payload=self._fu_payload(ep.view)))
        v.status, v.closed_at = "closed", workflow.now()
        answered = [p for p in v.persons if p.answers is not None]
        await self._record(Event(kind=Kinds.CLOSED, step_id="closed", at=workflow.now(), payload={
            "sampled": len(v.persons), "answered": len(answered),
            "unreachable": [p.person_id for p in v.persons if p.state == "unreachable"],
            "no_answers": sum(1 for p in answered for ok in (p.answers or {}).values() if not ok),
            "followups": {s: sum(1 for f in v.followups if f.status == s)
                          for s in ("resolved", "unresolved", "acknowledged", "open")}}))
        await workflow.wait_condition(workflow.all_handlers_finished)  # a late answer taken while closing

    def _done(self, calls: asyncio.Task) -> bool:
        """Every call ended, every follow-up settled, and no answer half-recorded."""
        return calls.done() and self._all_resolved() and not (self.close_waits_for_answers and self.answering)

    def _all_resolved(self) -> bool:
        return all(ep.view.status in ("resolved", "unresolved") for ep in self.followups.values())

    # ------------------------------------------------------------- answers

    @workflow.update
    async def answer(self, req: AnswerIn) -> SpotCheckView:
        if req.ref and req.ref in self.refs:
            return self.v  # the same answer delivered twice
        self._refuse_if("answer", req)
        if self.closing:  # the calls and follow-ups are over: recorded, nothing more starts
            await self._take_late_answer(req)
            return self.v
        self.answering += 1
        try:
            await self._take_answer(req)
        finally:
            self.answering -= 1
            self.changed = True
        return self.v

    def _set_answers(self, req: AnswerIn, state: str) -> PersonView:
        p = next(x for x in self.v.persons if x.person_id == req.person_id)
        p.answers = {q.id: req.answers[q.id] for q in self.settings.questions}
        p.state, p.channel, p.answered_at, p.answered_by = state, req.channel, workflow.now(), req.actor
        if req.ref:
            self.refs.append(req.ref)
        return p

    async def _take_answer(self, req: AnswerIn) -> None:
        p = self._set_answers(req, "answered")
        no = [q for q in self.settings.questions if not p.answers[q.id]]
        await self._record(Event(kind=Kinds.ANSWERED, step_id=f"answer/{p.person_id}", actor=req.actor,
                                 channel=req.channel, at=p.answered_at, payload={
                                     "person_id": p.person_id, "name": p.name, "answers": p.answers,
                                     "no": [q.id for q in no], "note": req.note, "ref": req.ref,
                                     "by_proxy": req.actor != p.person_id}))
        s = self.sampled[p.person_id]
        self.calls_inbox.put([Ack(person_id=p.person_id, channel=req.channel, at=p.answered_at, actor=req.actor,
                                  target_keys=[s.target.key], ref=req.ref or f"answer:{p.person_id}")])
        if no:
            await self._open_followup(s, [q.id for q in no])

    async def _take_late_answer(self, req: AnswerIn) -> None:
        p = self._set_answers(req, "answered_late")
        await self._record(Event(kind=Kinds.ANSWERED_LATE, step_id=f"answer/{p.person_id}/late", actor=req.actor,
                                 channel=req.channel, at=p.answered_at, payload=late_answer_payload(p, req, "closing")))

    @answer.validator
    def _answer_ok(self, req: AnswerIn) -> None:
        if req.ref and req.ref in self.refs:
            return
        self._refuse_if("answer", req)

    async def _open_followup(self, s: Sampled, failed: list[str]) -> None:
        now = workflow.now()
        key = f"{s.town_id or 'town'}/{s.person_id}"
        t = s.follow_up
        view = FollowupView(key=key, town_id=s.town_id, town_name=s.town_name, about_person_id=s.person_id,
                            about_name=s.label, failed=failed, responsible_id=t.person.person_id if t else None,
                            responsible_name=t.person.name if t else "", due_at=now + self.settings.follow_up.within,
                            opened_at=now)
        self.v.followups.append(view)
        await self._record(Event(kind=Kinds.FOLLOWUP_OPENED, step_id=f"followup/{key}/opened", at=now,
                                 payload=self._fu_payload(view)))
        if t is None:
            await self._record(Event(kind=Kinds.FOLLOWUP_GAP, step_id=f"followup/{key}/gap", at=now,
                                     payload={"key": key, "reason": f"nobody holds {self.settings.follow_up.position} "
                                                                    f"in {s.town_name or s.town_id}"}))
            self.followups[key] = FollowupEpisode(view, Escalation(run_key=f"{workflow.info().workflow_id}/fu/{key}",
                                                                   policies={}))
            return
        target = dataclasses.replace(t, key=f"fu/{key}", policy="follow_up")
        esc = Escalation.start(f"{workflow.info().workflow_id}/fu/{key}", {"follow_up": self.settings.follow_up.policy},
                               [target])
        ep = FollowupEpisode(view, esc)
        self.followups[key] = ep
        ep.task = asyncio.create_task(self._drive_followup(ep))

    async def _drive_followup(self, ep: FollowupEpisode) -> None:
        f = ep.view

        async def react(actions: Actions) -> None:
            for r in actions.records:
                if r.kind == "ack" and f.acknowledged_at is None:
                    f.acknowledged_at, f.acknowledged_by, f.acknowledged_via = r.at, r.person_id, r.channel
                    if f.status == "open":
                        f.status = "acknowledged"
                    self.changed = True

        await run_escalation(ep.esc, ep.inbox, "followup", workflow.info().workflow_id, f"followup/{f.key}",
                             lambda: self._context(f), until=lambda: f.status in ("resolved", "unresolved") or self.closing,
                             before=react, io=self.io)
        if f.status == "resolved" and not ep.esc.done:
            await stop_escalation(ep.esc, "followup", workflow.info().workflow_id, f"followup/{f.key}", "已整改",
                                  self._context(f))

    async def _overdue(self, ep: FollowupEpisode) -> None:
        f = ep.view
        f.overdue = True
        await self._record(Event(kind=Kinds.FOLLOWUP_OVERDUE, step_id=f"followup/{f.key}/overdue",
                                 at=workflow.now(), payload=self._fu_payload(f)))
        chief = None
        for ts in ep.esc.targets.values():
            chief = ts.target.others.get("duty_chief")
        if chief is not None and chief.mobile:  # the duty chief is told (a message of its own, not a step of the call)
            send = Send(key=f"{workflow.info().workflow_id}/fu/{f.key}/overdue/{chief.person_id}/sms",
                        target_key=f"fu/{f.key}", person_id=chief.person_id, name=chief.name, to=chief.mobile,
                        channel="sms", purpose="inform", about=f.town_name)
            await duty_flush("followup", workflow.info().workflow_id, f"followup/{f.key}",
                             {**self._context(f), "overdue": True}, Actions(sends=[send]), io=self.io)

    @workflow.update
    async def resolve(self, req: ResolveIn) -> SpotCheckView:
        self._refuse_if("resolve", req)
        ep = self.followups[req.key]
        f, now = ep.view, workflow.now()
        f.status, f.resolved_at, f.resolved_by, f.resolution = "resolved", now, req.actor, req.note
        await self._record(Event(kind=Kinds.FOLLOWUP_RESOLVED, step_id=f"followup/{f.key}/resolved",
                                 actor=req.actor, at=now, payload={**self._fu_payload(f), "note": req.note,
                                                                   "late": now > f.due_at}))
        self.changed = True
        return self.v

    @resolve.validator
    def _resolve_ok(self, req: ResolveIn) -> None:
        self._refuse_if("resolve", req)

    def _refuse_if(self, action: str, req: Actor) -> None:
        RULES.refuse_if(action, Check(v=self.v, closing=self.closing, question_ids=[q.id for q in self.settings.questions],
                                      followups={k: ep.view for k, ep in self.followups.items()}), req, workflow.now())

    # ------------------------------------------------------------- calls, signals

    async def _react_calls(self, actions: Actions) -> None:
        for r in actions.records:
            p = next((x for x in self.v.persons if x.person_id == (r.person_id or "")), None)
            if p is None:
                continue
            if r.kind == "unreachable" and p.state != "answered":
                p.state = "unreachable"
            elif r.kind in ("timeout", "wait_skipped") and p.state == "pending":
                p.state = "called"
        for send in actions.sends:
            p = next((x for x in self.v.persons if x.person_id == send.person_id), None)
            if p is not None and p.state == "pending":
                p.state = "called"
        self.changed = True

    @workflow.signal(name="events")
    def events(self, batch: ShardEvents) -> None:
        """Gateway reports go to every escalation (each knows its sends); acknowledgements only to the
        follow-ups: a sampled person answers the six questions (the `answer` update), not just "1"."""
        self._answer(batch)

    @workflow.update(name="answers")
    def answers(self, batch: ShardEvents) -> list[dict[str, Any]]:
        """The `events` signal, answering what became of each acknowledgement (taken, recorded late, a repeat,
        none: a sampled person answers by the `answer` update), for the API to say so (api/services/answers)."""
        return self._answer(batch)

    def _answer(self, batch: ShardEvents) -> list[dict[str, Any]]:
        if self.calls is None:
            self.pending.extend([*batch.acks, *batch.reports])
            return [{"recorded": "taken", "late_by_s": None} for _ in batch.acks]
        return self._deliver([*batch.acks, *batch.reports])

    def _deliver(self, items: list) -> list[dict[str, Any]]:
        reports = [i for i in items if isinstance(i, Report)]
        acks = [i for i in items if isinstance(i, Ack)]
        if reports:
            self.calls_inbox.put(reports)
        for ep in self.followups.values():
            if ep.running:
                ep.inbox.put([*acks, *reports])
        # a follow-up's call that has ended: its answer is recorded late
        return record_late_answers(list(self.followups.values()), acks, lambda ep: ep.running,
                                   flusher("followup", workflow.info().workflow_id,
                                           lambda ep: self._context(ep.view), io=self.io), self.tasks)

    @workflow.query
    def state(self) -> SpotCheckView:
        return self.v

    # ------------------------------------------------------------- I/O

    def _fu_payload(self, f: FollowupView) -> dict:
        return {"key": f.key, "town_id": f.town_id, "town": f.town_name, "about": f.about_name,
                "about_person_id": f.about_person_id, "failed": f.failed, "responsible": f.responsible_id,
                "due_at": f.due_at.isoformat(), "status": f.status, "overdue": f.overdue}

    def _context(self, f: FollowupView | None = None) -> dict:
        out = {"title": self.v.title, "callout_id": self.v.callout_id, "questions": self.v.questions,
               "view": self.v.model_dump(mode="json")}
        if f is not None:
            out["followup"] = f.model_dump(mode="json")
        return out

    async def _record(self, *events: Event) -> None:
        async with self.io:
            await workflow.execute_activity(
                Duty.SPOTCHECK_RECORD, RecordRequest(workflow_id=workflow.info().workflow_id,
                                                       run_id=workflow.info().run_id, events=list(events), view=self.v),
                **ACTIVITY)

