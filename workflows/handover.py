"""Shift handover 交接班, one workflow per change of duty chief.

At the change (a Temporal Schedule at each time in definitions/duty/handover.yaml, or
`POST /api/handovers`), the handover note is filled in from what is open: warnings,
running call-outs, open incidents with their pending deadlines, open spot-check
follow-ups. The outgoing duty chief edits it and hands over; the incoming duty chief
takes over, in the console or by answering the message (SMS reply, keypress, link).
Nobody takes over within the time: the shared escalation interpreter calls the
leading leader. Every step is written to the audit chain under the handover's id.
"""
from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field
from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from definitions.schema.duty import HandoverSettings
    from workflows.callout import ShardEvents
    from workflows.common import ACTIVITY, CONFLICT, FORBIDDEN, Actor, Event
    from workflows.duty import flusher, run_escalation, stop_escalation
    from workflows.escalation import Ack, Actions, Contact, Escalation, Inbox, Target, record_late_answers
    from workflows.kit.events import Handover
    from workflows.kit.names import Duty

ItemKind = Literal["warning", "callout", "incident", "deadline", "activation", "followup", "drill", "other"]
STATUS_ZH = {"open": "待交班", "handed_over": "已交班待接班", "taken_over": "已接班", "not_taken_over": "未接班",
             "skipped": "无需交接"}


class NoteItem(BaseModel):
    kind: ItemKind = "other"
    ref: str = Field(default="", max_length=200)
    text: str = Field(min_length=1, max_length=2000)
    due_at: datetime | None = None


class HandoverNote(BaseModel):
    items: list[NoteItem] = Field(default_factory=list, max_length=500)
    text: str = Field(default="", max_length=10000, description="what the outgoing chief writes by hand")
    edited_by: str | None = None
    edited_at: datetime | None = None


class HandoverInput(BaseModel):
    settings: HandoverSettings
    version: str = ""
    shift_at: datetime | None = Field(default=None, description="the change; default: when the workflow starts")
    started_by: str = "schedule"


class OpenRequest(BaseModel):
    handover_id: str
    run_id: str
    shift_at: datetime


class Opened(BaseModel):
    outgoing: Contact | None = None
    incoming: Contact | None = None
    leader: Contact | None = None
    others: dict[str, Contact] = Field(default_factory=dict)
    note: HandoverNote = Field(default_factory=HandoverNote)


class NoteIn(Actor):
    items: list[NoteItem] | None = Field(default=None, description="the whole list, replacing the current one")
    text: str | None = Field(default=None, max_length=10000)


class HandOverIn(Actor):
    text: str | None = Field(default=None, max_length=10000)


class TakeOverIn(Actor):
    note: str | None = Field(default=None, max_length=2000)


class HandoverView(BaseModel):
    handover_id: str
    status: Literal["opening", "open", "handed_over", "taken_over", "not_taken_over", "skipped"]
    shift_at: datetime
    due_at: datetime | None = None
    outgoing: Contact | None = None
    incoming: Contact | None = None
    leader: Contact | None = None
    note: HandoverNote = Field(default_factory=HandoverNote)
    handed_over_at: datetime | None = None
    taken_over_at: datetime | None = None
    taken_over_by: str | None = None
    taken_over_via: str | None = None
    escalated_at: datetime | None = None
    leader_ack_at: datetime | None = None
    leader_ack_by: str | None = None
    call_state: str | None = None
    closed_at: datetime | None = None


class RecordRequest(BaseModel):
    workflow_id: str
    run_id: str
    events: list[Event]
    view: HandoverView


def handover_id_for(shift_at: datetime) -> str:
    return f"handover-{shift_at:%Y%m%dT%H%M}Z"


def refusal(v: HandoverView, action: str, req: Actor) -> tuple[str, str] | None:
    """Why this step is refused now: (forbidden | conflict, reason); None if allowed."""
    admin = req.role == "admin"
    if v.status in ("taken_over", "not_taken_over", "skipped") or v.closed_at is not None:
        return CONFLICT, f"the handover is {v.status} ({STATUS_ZH.get(v.status, v.status)}); nothing more can change"
    if v.status == "opening":
        return CONFLICT, "the handover is being opened; try again in a moment"
    if action in ("note", "hand_over"):
        if not admin and (v.outgoing is None or req.actor != v.outgoing.person_id):
            who = v.outgoing.name if v.outgoing else "nobody"
            return FORBIDDEN, f"only the outgoing duty chief ({who}) edits and hands over the note"
        if action == "hand_over" and v.status == "handed_over":
            return CONFLICT, f"handed over already at {v.handed_over_at.isoformat() if v.handed_over_at else '?'}"
    if action == "take_over":
        incoming = v.incoming.person_id if v.incoming else None
        if not admin and req.actor != incoming and req.role != "leading_leader":
            who = v.incoming.name if v.incoming else "nobody"
            return FORBIDDEN, (f"only the incoming duty chief ({who}) takes over "
                               "(or the leading leader records it on their behalf)")
    return None


@workflow.defn
class HandoverWorkflow:
    @workflow.init
    def __init__(self, inp: HandoverInput) -> None:
        self.inp = inp
        self.v = HandoverView(handover_id="", status="opening", shift_at=inp.shift_at or workflow.now())
        self.inbox = Inbox()
        self.pending: list = []
        self.esc: Escalation | None = None
        self.io = asyncio.Lock()
        self.opened = False
        self.calling = False  # the take-over call runs (answers go to it)
        self.tasks: dict[str, asyncio.Task] = {}  # late answers being recorded

    @workflow.run
    async def run(self, inp: HandoverInput) -> HandoverView:
        """Open the handover; skip it when nobody new takes over; else wait for the shift change, call the
        incoming duty chief until they take over (escalating as the policy says), wait until it closes."""
        opened = await self._open_note(inp)
        if opened.incoming is None or (opened.outgoing and opened.outgoing.person_id == opened.incoming.person_id):
            return await self._skip(opened)
        await self._opened(inp)
        await self._until(self.v.shift_at)  # opened ahead of the change: the note can be edited; calling starts then
        await self._call_incoming(inp, opened)
        if self.v.taken_over_at is None:  # the leading leader knows, or nobody answered: wait for a take-over still
            await self._until(self.v.shift_at + inp.settings.close_after)
        await workflow.wait_condition(workflow.all_handlers_finished)
        await asyncio.gather(*self.tasks.values())
        await self._close()
        return self.v

    async def _open_note(self, inp: HandoverInput) -> Opened:
        wid = workflow.info().workflow_id
        self.v.handover_id = wid
        opened: Opened = await workflow.execute_activity(
            Duty.HANDOVER_OPEN, OpenRequest(handover_id=wid, run_id=workflow.info().run_id, shift_at=self.v.shift_at),
            result_type=Opened, **ACTIVITY)
        v = self.v
        v.outgoing, v.incoming, v.leader, v.note = opened.outgoing, opened.incoming, opened.leader, opened.note
        return opened

    async def _skip(self, opened: Opened) -> HandoverView:
        v = self.v
        v.status, v.closed_at = "skipped", workflow.now()
        why = "nobody is on the roster as duty chief after the change" if opened.incoming is None else \
            "the same duty chief stays on duty"
        await self._record(Event(kind=Handover.SKIPPED, step_id="skipped", at=workflow.now(),
                                 payload={"reason": why, "shift_at": v.shift_at.isoformat()}))
        self.opened = True
        return v

    async def _opened(self, inp: HandoverInput) -> None:
        v = self.v
        v.status = "open"
        v.due_at = max(v.shift_at, workflow.now()) + inp.settings.take_over_within
        await self._record(Event(kind=Handover.OPENED, step_id="opened", actor=inp.started_by, at=workflow.now(),
                                 payload={"shift_at": v.shift_at.isoformat(), "due_at": v.due_at.isoformat(),
                                          "outgoing": _who(v.outgoing), "incoming": _who(v.incoming),
                                          "leader": _who(v.leader), "items": [i.model_dump(mode="json") for i in v.note.items],
                                          "settings_version": inp.version}))
        self.opened = True

    async def _until(self, at: datetime) -> None:
        """Wait until `at` or a take-over, whichever comes first (no timer when `at` has passed)."""
        if at <= workflow.now():
            return
        try:
            await workflow.wait_condition(lambda: self.v.taken_over_at is not None, timeout=at - workflow.now())
        except asyncio.TimeoutError:
            pass

    async def _call_incoming(self, inp: HandoverInput, opened: Opened) -> None:
        v, wid = self.v, self.v.handover_id
        target = Target(key="incoming", tier="handover", position="duty_chief", label=f"接班值班长{v.incoming.name}",
                        person=v.incoming, others=opened.others, policy="handover", priority=0)
        self.esc = Escalation.start(f"{wid}/take-over", {"handover": inp.settings.policy}, [target])
        self.inbox.put(self.pending)
        self.pending = []
        self.calling = True
        await run_escalation(self.esc, self.inbox, "handover", wid, "take-over", self._context,
                             until=lambda: v.taken_over_at is not None, before=self._react, io=self.io)
        self.calling = False
        self.late_answers(self.inbox.drain())  # answers that came after the call's last look
        if v.taken_over_at is not None and self.esc.targets["incoming"].state not in ("acknowledged", "unreachable"):
            await stop_escalation(self.esc, "handover", wid, "take-over", "已接班", self._context())

    async def _close(self) -> None:
        v = self.v
        if v.taken_over_at is None:
            v.status, v.closed_at = "not_taken_over", workflow.now()
            await self._record(Event(kind=Handover.NOT_TAKEN_OVER, step_id="not_taken_over", at=workflow.now(),
                                     payload={"incoming": _who(v.incoming), "escalated_at": _iso(v.escalated_at),
                                              "leader_ack_by": v.leader_ack_by}))
        else:
            v.closed_at = workflow.now()
            await self._record(Event(kind=Handover.CLOSED, step_id="closed", at=workflow.now(),
                                     payload={"taken_over_by": v.taken_over_by, "via": v.taken_over_via,
                                              "late_by_s": max(0, int((v.taken_over_at - v.due_at).total_seconds()))
                                              if v.due_at else 0}))

    # ------------------------------------------------------------- what the interpreter reports

    async def _react(self, actions: Actions) -> None:
        v = self.v
        for r in actions.records:
            if r.kind == "escalated" and v.escalated_at is None:
                v.escalated_at = r.at
            if r.kind != "ack" or v.taken_over_at is not None:
                continue
            if v.incoming and r.person_id == v.incoming.person_id:
                self._take_over(r.person_id, r.channel or "?", r.at)
                await self._record(Event(kind=Handover.TAKEN_OVER, step_id="taken_over", actor=r.person_id,
                                         channel=r.channel, at=r.at, payload=self._taken_payload()))
            elif v.leader and r.person_id == v.leader.person_id and v.leader_ack_at is None:
                v.leader_ack_at, v.leader_ack_by = r.at, r.person_id
                await self._record(Event(kind=Handover.LEADER_ACKNOWLEDGED, step_id="leader_ack", actor=r.person_id,
                                         channel=r.channel, at=r.at,
                                         payload={"leader": _who(v.leader), "incoming": _who(v.incoming)}))

    def _take_over(self, by: str, via: str, at: datetime) -> None:
        v = self.v
        v.status, v.taken_over_at, v.taken_over_by, v.taken_over_via = "taken_over", at, by, via

    def _taken_payload(self) -> dict:
        v = self.v
        late = max(0, int((v.taken_over_at - v.due_at).total_seconds())) if v.taken_over_at and v.due_at else 0
        return {"by": v.taken_over_by, "via": v.taken_over_via, "due_at": _iso(v.due_at), "late_by_s": late,
                "note_items": len(v.note.items)}

    # ------------------------------------------------------------- updates

    @workflow.update
    async def edit_note(self, req: NoteIn) -> HandoverView:
        self._refuse_if("note", req)
        n = self.v.note
        if req.items is not None:
            n.items = req.items
        if req.text is not None:
            n.text = req.text
        n.edited_by, n.edited_at = req.actor, workflow.now()
        await self._record(Event(kind=Handover.NOTE_EDITED, step_id=f"note/{workflow.now().isoformat()}",
                                 actor=req.actor, at=workflow.now(),
                                 payload={"items": [i.model_dump(mode="json") for i in n.items], "text": n.text}))
        return self.v

    @edit_note.validator
    def _edit_ok(self, req: NoteIn) -> None:
        self._refuse_if("note", req)

    @workflow.update
    async def hand_over(self, req: HandOverIn) -> HandoverView:
        self._refuse_if("hand_over", req)
        v, now = self.v, workflow.now()
        if req.text is not None:
            v.note.text, v.note.edited_by, v.note.edited_at = req.text, req.actor, now
        v.status, v.handed_over_at = "handed_over", now
        await self._record(Event(kind=Handover.HANDED_OVER, step_id="handed_over", actor=req.actor, at=now,
                                 payload={"items": [i.model_dump(mode="json") for i in v.note.items],
                                          "text": v.note.text}))
        return v

    @hand_over.validator
    def _hand_over_ok(self, req: HandOverIn) -> None:
        self._refuse_if("hand_over", req)

    @workflow.update
    async def take_over(self, req: TakeOverIn) -> HandoverView:
        self._refuse_if("take_over", req)
        v, now = self.v, workflow.now()
        by = v.incoming.person_id if v.incoming else req.actor
        self._take_over(by, "console" if req.actor == by else "proxy", now)
        await self._record(Event(kind=Handover.TAKEN_OVER, step_id="taken_over", actor=req.actor, at=now,
                                 payload={**self._taken_payload(), "recorded_by": req.actor, "note": req.note}))
        return v

    @take_over.validator
    def _take_over_ok(self, req: TakeOverIn) -> None:
        self._refuse_if("take_over", req)

    def _refuse_if(self, action: str, req: Actor) -> None:
        why = refusal(self.v, action, req)
        if why is not None:
            raise ApplicationError(why[1], type=why[0], non_retryable=True)

    @workflow.signal(name="events")
    def events(self, batch: ShardEvents) -> None:
        """Answers and gateway reports (routed by api/services/answers, like a call-out shard's)."""
        self._deliver(batch)

    @workflow.update(name="answers")
    def answers(self, batch: ShardEvents) -> list[dict[str, Any]]:
        """The `events` signal, answering what became of each acknowledgement (taken, recorded late, a repeat),
        for the API to say so (api/services/answers)."""
        return self._deliver(batch)

    def _deliver(self, batch: ShardEvents) -> list[dict[str, Any]]:
        items = [*batch.acks, *batch.reports]
        if self.esc is None:
            self.pending.extend(items)
            return [{"recorded": "taken", "late_by_s": None} for _ in batch.acks]
        if self.calling:
            self.inbox.put(items)
            return [{"recorded": "taken", "late_by_s": None} for _ in batch.acks]
        return self.late_answers(items)

    def late_answers(self, items: list) -> list[dict[str, Any]]:
        """After the take-over call ended: an answer to it is recorded late (not left in its inbox)."""
        acks = [i for i in items if isinstance(i, Ack)]
        if self.esc is None or not acks:
            return []
        return record_late_answers([_Call("take-over", self.esc)], acks, lambda ep: False,
                                   flusher("handover", workflow.info().workflow_id, lambda ep: self._context(),
                                           io=self.io), self.tasks)

    @workflow.query
    def state(self) -> HandoverView:
        return self._view()

    @workflow.update
    async def opened_view(self) -> HandoverView:
        """Returns once the handover is stored (the API answers `POST /api/handovers` with it)."""
        await workflow.wait_condition(lambda: self.opened)
        return self._view()

    # ------------------------------------------------------------- I/O

    def _view(self) -> HandoverView:
        ts = self.esc.targets.get("incoming") if self.esc else None
        return self.v.model_copy(update={"call_state": ts.state if ts else None})

    def _context(self) -> dict:
        v = self.v
        return {"shift_at": _iso(v.shift_at), "due_at": _iso(v.due_at), "incoming": _who(v.incoming),
                "outgoing": _who(v.outgoing), "items": len(v.note.items),
                "view": self._view().model_dump(mode="json")}

    async def _record(self, *events: Event) -> None:
        async with self.io:
            await workflow.execute_activity(
                Duty.HANDOVER_RECORD, RecordRequest(workflow_id=workflow.info().workflow_id,
                                                      run_id=workflow.info().run_id, events=list(events),
                                                      view=self._view()), **ACTIVITY)


class _Call:
    """The take-over call, as an episode of the shared late-answer handling."""

    def __init__(self, name: str, esc: Escalation) -> None:
        self.name, self.esc = name, esc


def _who(c: Contact | None) -> dict | None:
    return {"person_id": c.person_id, "name": c.name} if c else None


def _iso(at: datetime | None) -> str | None:
    return at.isoformat() if at else None


# Acks are what people answer; a take-over by keypress or SMS reply is an Ack of the incoming chief.
__all__ = ["Ack", "HandoverInput", "HandoverView", "HandoverWorkflow", "NoteIn", "HandOverIn", "TakeOverIn", "NoteItem"]
