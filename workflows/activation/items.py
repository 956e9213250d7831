"""Tasks and directives 督办: each is opened with its time limit and its assignee called to acknowledge;
a reminder before the limit; feedback (progress / done / blocked); the commander accepts or returns it;
past the limit without a done report the assignee is called again (and then their superior), and an
accepted late report keeps a late mark."""
from __future__ import annotations

from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from workflows.kit.events import Activation as Kinds  # the audit event kinds, defined once
    from workflows.activation.base import ActivationSteps
    from workflows.activation.messages import ActivationView, Actor, DirectiveIn, FeedbackIn, ItemIn, ItemReviewIn, PersonAckIn
    from workflows.activation.state import OPEN, Decision, Feedback, Holder, Item, remind_at
    from workflows.callout import ShardEvents
    from workflows.common import INVALID, Event
    from workflows.escalation import Ack


class ItemSteps(ActivationSteps):
    # ------------------------------------------------------------- opening one

    async def _open_item(self, item: Item, prefix: str = "") -> None:
        self.s.items.append(item)
        await self.record(Event(kind=Kinds.item_opened(item.kind),
                                step_id=f"item/{item.id}/opened", actor=item.issued_by, at=item.issued_at, payload={
                                    "item": item.id, "title": item.title, "text": item.text, "group": item.group,
                                    "unit": item.unit, "assignee": item.assignee.label,
                                    "assignee_person": item.assignee.person.person_id if item.assignee.person else None,
                                    "due_at": item.due_at.isoformat(), "feedback_required": item.feedback_required}))
        t = self._target(item.id, item.assignee, self.plan.directives.ack_policy, priority=30, label=item.assignee.label)
        if t is None:
            await self.record(Event(kind=Kinds.GAP, step_id=f"item/{item.id}/gap", at=workflow.now(),
                                    payload={"item": item.id, "gaps": [f"nobody holds {item.assignee.key}"]}))
            return
        text = self.says.render("notice", word=item.word, id=item.id, prefix=prefix, title=item.title, text=item.text)
        self._call("notice", item.id, f"{item.word}{item.id} {item.title}", text, [t], due=item.due_at)

    def _remind_at(self, now: datetime, due: datetime) -> datetime | None:
        return remind_at(now, due, self.plan.directives.remind_before)

    @workflow.update
    async def issue_directive(self, req: DirectiveIn) -> ActivationView:
        self.refuse_if("directive", req)
        now = workflow.now()
        due = req.due_at if req.due_at is not None else now + (req.due_in or timedelta(0))
        group = unit = None
        if req.assignee.startswith("group:"):
            group = self.plan.group(req.assignee.split(":", 1)[1])
            h = self.s.holders.get(group.lead.key) or Holder(key=group.lead.key, position=group.lead.position,
                                                              label=group.lead.key)
        else:
            unit = req.assignee
            h = (await self._lookup(units=[unit])).unit_heads.get(unit)
            if h is None or h.person is None:
                raise ApplicationError(f"assignee: nobody heads org unit {unit!r} in the directory "
                                       f"({' / '.join(self.plan.directives.unit_heads)})", type=INVALID, non_retryable=True)
            self.s.took_part(h)
        self.s.directives += 1  # numbered once it can be issued (a refused one takes no number)
        item = Item(id=f"D{self.s.directives}", kind="directive", title=req.title or req.text[:30], text=req.text,
                    group=group.id if group else None, unit=unit, assignee=h, issued_by=req.actor, issued_at=now,
                    due_at=due, first_due_at=due, remind_at=self._remind_at(now, due))
        await self._open_item(item, f"{group.name_zh}:" if group else "")
        return self.view()

    @issue_directive.validator
    def _directive_ok(self, req: DirectiveIn) -> None:
        self.refuse_if("directive", req)

    # ------------------------------------------------------------- acknowledged

    @workflow.update
    async def acknowledge(self, req: ItemIn) -> ActivationView:
        """The assignee confirms receipt (or the duty office for them, by phone)."""
        self.refuse_if("acknowledge", req)
        item = self.s.item(req.item_id)
        await self._ack_item(item, req, "api" if req.actor in item.assignee.persons() else "proxy")
        return self.view()

    @acknowledge.validator
    def _ack_ok(self, req: ItemIn) -> None:
        self.refuse_if("acknowledge", req)

    @workflow.update
    async def acknowledge_person(self, req: PersonAckIn) -> ActivationView:
        """Everything a person was called for in this response, confirmed by them or for them by the duty office
        (the plan's proxy roles): the same rule as an item's acknowledgement (rules.Activation.acting_for)."""
        self.refuse_if("acknowledge_person", req)
        now = workflow.now()
        channel = "api" if req.actor == req.person_id else "proxy"
        self._deliver(ShardEvents(acks=[Ack(person_id=req.person_id, channel=channel, at=now, actor=req.actor,
                                            note=req.note, ref=f"{channel}:{req.actor}:{req.person_id}:{now.timestamp()}")]))
        return self.view()

    @acknowledge_person.validator
    def _ack_person_ok(self, req: PersonAckIn) -> None:
        self.refuse_if("acknowledge_person", req)

    async def _ack_item(self, item: Item, req: Actor, channel: str) -> None:
        ep = self.episode(f"notice/{item.id}")
        if item.acknowledged_at is not None:
            return
        if ep is None or ep.esc.targets.get(item.id) is None:  # nobody could be called: the answer is the record
            now = workflow.now()
            item.acknowledged(now, req.actor, channel)
            await self.record(Event(kind=Kinds.NOTICE_ACK, step_id=f"item/{item.id}/ack", actor=req.actor,
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

    # ------------------------------------------------------------- fed back, accepted or returned

    @workflow.update
    async def feedback(self, req: FeedbackIn) -> ActivationView:
        """Progress, done or blocked: from the assignee (or recorded for them by the duty office)."""
        self.refuse_if("feedback", req)
        item, now = self.s.item(req.item_id), workflow.now()
        mine = req.actor in item.assignee.persons()
        if item.acknowledged_at is None:  # feedback says it arrived
            await self._ack_item(item, req, "api" if mine else "proxy")
        item.fed_back(Feedback(kind=req.kind, text=req.text, by=req.actor, at=now, on_behalf=not mine))
        await self.record(Event(kind=Kinds.item(item.kind, "feedback"), step_id=f"item/{item.id}/feedback/{len(item.feedback)}",
                                actor=req.actor, at=now, payload={
                                    "item": item.id, "kind": req.kind, "text": req.text, "on_behalf": not mine,
                                    "note": req.note, "due_at": item.due_at.isoformat(), "state": item.state,
                                    "after_due": now > item.due_at}))
        if req.kind == "done":
            self._stop(f"overdue/{item.id}/", "已反馈完成", prefix=True)
        return self.view()

    @feedback.validator
    def _feedback_ok(self, req: FeedbackIn) -> None:
        self.refuse_if("feedback", req)

    @workflow.update
    async def review_item(self, req: ItemReviewIn) -> ActivationView:
        """The commander accepts the reported work (办结) or returns it with what is missing."""
        self.refuse_if("review", req)
        item, now = self.s.item(req.item_id), workflow.now()
        d = Decision(decision=req.decision, comments=req.comments, by=req.actor, at=now)
        late: list[Event] = []
        if req.decision == "accept":
            if late_by_s := item.accept(d):
                minutes = -(-late_by_s // 60)
                late.append(Event(kind=Kinds.item(item.kind, "late"), step_id=f"item/{item.id}/late", at=now, payload={
                    "item": item.id, "title": item.title, "due_at": item.due_at.isoformat(),
                    "reported_at": (item.reported_at or now).isoformat(), "late_by_s": late_by_s,
                    "late_by_min": minutes, "mark": f"逾期{minutes}分钟办结"}))
        else:
            item.send_back(d, req.due_in, self.plan.directives.remind_before)
        await self.record(Event(kind=Kinds.item(item.kind, "accepted" if req.decision == "accept" else "returned"),
                                step_id=f"item/{item.id}/review/{len(item.decisions)}", actor=req.actor, at=now, payload={
                                    "item": item.id, "comments": req.comments, "due_at": item.due_at.isoformat(),
                                    "late_by_s": item.late_by_s}), *late)
        if req.decision == "return" and item.assignee.person is not None:
            text = self.says.render("returned", id=item.id, title=item.title, comments=req.comments)
            await self._notify("activation.item.returned_notice", f"item/{item.id}/returned/{len(item.decisions)}",
                               self._notices(f"returned/{item.id}/{len(item.decisions)}", item.assignee.person, text,
                                             due=item.due_at), payload={"item": item.id})
        return self.view()

    @review_item.validator
    def _review_ok(self, req: ItemReviewIn) -> None:
        self.refuse_if("review", req)

    # ------------------------------------------------------------- timers: reminders, overdue work

    async def _items_due(self) -> None:
        for item in list(self.s.items):
            now = workflow.now()
            if item.state not in OPEN:
                continue
            if item.remind_at and item.reminded_at is None and now >= item.remind_at:
                item.reminded_at = now
                await self._remind(item)
            if item.overdue_at is None and now >= item.due_at:
                item.overdue_at = now
                await self._overdue(item, now)

    async def _remind(self, item: Item) -> None:
        p = item.assignee.person
        text = self.says.render("remind", id=item.id, title=item.title)
        notices = [] if p is None else self._notices(f"remind/{item.id}/{item.rounds}", p, text, due=item.due_at)
        await self._notify("activation.item.reminder", f"item/{item.id}/reminder/{item.rounds}", notices, payload={
            "item": item.id, "title": item.title, "due_at": item.due_at.isoformat(), "state": item.state,
            "to": item.assignee.label})

    async def _overdue(self, item: Item, now: datetime) -> None:
        await self.record(Event(kind=Kinds.item(item.kind, "overdue"), step_id=f"item/{item.id}/overdue/{item.rounds}",
                                at=now, payload={"item": item.id, "title": item.title, "due_at": item.due_at.isoformat(),
                                                 "state": item.state, "assignee": item.assignee.label}))
        t = self._target(f"overdue/{item.id}", item.assignee, self.plan.directives.overdue_policy, priority=0,
                         label=item.assignee.label)
        if t is not None:
            self._call("overdue", f"{item.id}/{item.rounds}", f"督办 {item.word}{item.id} {item.title}",
                       self.says.render("overdue", word=item.word, id=item.id, title=item.title), [t], due=item.due_at)

    # ------------------------------------------------------------- closed (no longer needed, or the end)

    async def _close(self, item: Item, reason: str, tell: bool = True) -> None:
        now = workflow.now()
        item.close(now, reason)
        self._stop(f"notice/{item.id}", reason, silent=not tell)
        self._stop(f"overdue/{item.id}/", reason, prefix=True, silent=not tell)
        await self.record(Event(kind=Kinds.item(item.kind, "closed"), step_id=f"item/{item.id}/closed", at=now,
                                payload={"item": item.id, "title": item.title, "reason": reason}))
