"""The escalation interpreter, shared by every procedure.

`Escalation` runs the steps of a `Policy` (definitions/schema/escalation.py) for
many targets at once: it is a pure, deterministic state machine that a workflow
drives. `advance(now)` runs every target that is not waiting until it waits or
ends and returns what to send and what to record; `acknowledge()` and `report()`
take answers and gateway reports; `next_deadline()` is the one timer the host
workflow needs for all its targets. `drive()` is that host loop, written once.
"""
from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta
from typing import Any, Literal, Protocol

from pydantic import BaseModel, Field, PrivateAttr
from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from definitions.schema.escalation import Policy, Step
    from workflows.kit.events import FAILED_STATUSES  # noqa: F401  (defined once, with the event kinds; re-exported)
    from workflows.kit.events import Escalation as Rec  # the records' names (`<episode prefix>.<record>` kinds)
TERMINAL_STATES = {"acknowledged", "unreachable", "canceled"}
LATE_ANSWERS = "late-answers"
"""workflow.patched id: answers after a target was settled are recorded as late, not dropped."""
LATE_EPISODES = "late-answers-ended-episodes"
"""workflow.patched id: answers to an episode that has ended, delivered to a procedure's workflow that still
runs, are recorded as late, not dropped (its own id: the call-out's `LATE_ANSWERS` marker may sit elsewhere in
a history, and these records are new activity calls)."""


class Contact(BaseModel):
    person_id: str
    name: str = ""
    mobile: str | None = None
    im_id: str | None = None

    def address(self, channel: str) -> str | None:
        return self.im_id if channel == "im" else self.mobile


class Target(BaseModel):
    """Someone who must answer: a post (position in an org unit) held by a person."""

    key: str
    tier: str = ""
    position: str = ""
    org_unit: str = ""
    label: str = ""
    person: Contact
    deputy: Contact | None = None
    superior: Contact | None = None
    others: dict[str, Contact] = Field(default_factory=dict, description="duty roles and position:<code> recipients")
    policy: str
    priority: int = 100


class Send(BaseModel):
    key: str
    target_key: str
    person_id: str
    name: str = ""
    to: str
    channel: str
    purpose: Literal["notify", "escalate", "inform", "cancel", "update", "summary"] = "notify"
    priority: int = 100
    about: str = ""


class Record(BaseModel):
    """Something that happened, to be written to the audit chain and the read model."""

    kind: str
    step_id: str
    step_global: bool = Field(default=False, description="the step id is the workflow's, not its episode's: the "
                                                          "flush writes it as is (a late answer, one per workflow)")
    target_key: str | None = None
    person_id: str | None = None
    channel: str | None = None
    actor: str = "system"
    at: datetime
    state: str | None = None
    payload: dict[str, Any] = Field(default_factory=dict)


class Actions(BaseModel):
    sends: list[Send] = Field(default_factory=list)
    records: list[Record] = Field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.sends or self.records)

    def extend(self, other: "Actions") -> "Actions":
        self.sends.extend(other.sends)
        self.records.extend(other.records)
        return self


class Ack(BaseModel):
    person_id: str
    channel: str
    at: datetime
    actor: str = ""
    note: str | None = None
    target_keys: list[str] | None = None
    ref: str = Field(default="", description="unique id of the answer (message id, link jti) for idempotency")


class Report(BaseModel):
    """A gateway's report on one send: delivered, failed, busy, no_answer, machine, declined (keypress 2)…"""

    send_key: str
    status: str
    at: datetime
    detail: str | None = None


class FlushResult(BaseModel):
    """What a flush activity returns: the sends the gateway refused at once, as reports, and when the
    gateway accepted each send that went out (the answer window counts from there)."""

    reports: list[Report] = Field(default_factory=list)
    accepted: dict[str, datetime] = Field(default_factory=dict, description="send key -> gateway acceptance time")


class TargetState(BaseModel):
    target: Target
    state: str = "pending"
    pc: int = 0
    block_start: int = 0
    repeats: dict[int, int] = Field(default_factory=dict)
    recipients: list[str] = Field(default_factory=list)
    first_notify_done: bool = False
    last_channels: list[str] = Field(default_factory=list)
    waiting_until: datetime | None = None
    wait: timedelta | None = Field(default=None, description="the current wait_ack's length")
    outstanding: list[str] = Field(default_factory=list, description="send keys of the current round")
    sends_total: int = 0
    acknowledged_at: datetime | None = None
    ack_channel: str | None = None
    ack_by: str | None = None
    settled_at: datetime | None = Field(default=None, description="when it was acknowledged, unreachable or canceled")


class Escalation(BaseModel):
    """State of an escalation run: serialisable, so it survives continue-as-new."""

    run_key: str
    policies: dict[str, Policy]
    night: bool = False
    targets: dict[str, TargetState] = Field(default_factory=dict)
    send_index: dict[str, str] = Field(default_factory=dict, description="send key -> target key")
    seen_refs: list[str] = Field(default_factory=list)
    # Indexes kept beside the state (rebuilt after continue-as-new): an answer looks up the targets
    # its person answers for, not every target of the shard (582 us -> a few us per answer at 500).
    _holders: dict[str, list[str]] | None = PrivateAttr(default=None)
    _seen: set[str] | None = PrivateAttr(default=None)

    @classmethod
    def start(cls, run_key: str, policies: dict[str, Policy], targets: list[Target], night: bool = False) -> "Escalation":
        esc = cls(run_key=run_key, policies=policies, night=night)
        esc.add(targets)
        return esc

    def add(self, targets: list[Target]) -> None:
        for t in sorted(targets, key=lambda t: (t.priority, t.key)):
            if t.key not in self.targets:
                self.targets[t.key] = TargetState(target=t, recipients=[t.person.person_id])
                self._index(t.key, t.person.person_id)

    def _private(self) -> dict[str, Any]:
        return self.__pydantic_private__  # type: ignore[return-value]  # plain dict: pydantic's getattr is slow

    def _index(self, key: str, person_id: str) -> None:
        holders = self._private().get("_holders")
        if holders is not None:
            holders.setdefault(person_id, []).append(key)

    def _answering_for(self, person_id: str) -> list[TargetState]:
        """The targets `person_id` is responsible for, in the targets' order."""
        priv, targets = self._private(), self.targets
        holders = priv.get("_holders")
        if holders is None:
            holders = priv["_holders"] = {}
            for key, ts in targets.items():
                for pid in ts.recipients:
                    holders.setdefault(pid, []).append(key)
        keys = holders.get(person_id, [])
        if len(keys) > 1:
            order = {k: i for i, k in enumerate(targets)}
            keys = sorted(set(keys), key=order.__getitem__)
        return [targets[k] for k in keys]

    # ------------------------------------------------------------- queries
    @property
    def done(self) -> bool:
        return all(ts.state in TERMINAL_STATES for ts in self.targets.values())

    def next_deadline(self) -> datetime | None:
        pending = [ts.waiting_until for ts in self.targets.values() if ts.waiting_until and ts.state not in TERMINAL_STATES]
        return min(pending) if pending else None

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for ts in self.targets.values():
            out[ts.state] = out.get(ts.state, 0) + 1
        return out

    def reached(self) -> list[TargetState]:
        return [ts for ts in self.targets.values() if ts.sends_total > 0]

    # ------------------------------------------------------------- running
    def advance(self, now: datetime) -> Actions:
        actions = Actions()
        for ts in self.targets.values():
            if ts.state in TERMINAL_STATES:
                continue
            if ts.waiting_until is not None:
                if ts.waiting_until > now:
                    continue
                ts.waiting_until = None
                actions.records.append(self._record(ts, Rec.TIMEOUT, now, payload={"step": ts.pc - 1}))
            self._run(ts, now, actions)
        actions.sends.sort(key=lambda s: s.priority)
        return actions

    def _run(self, ts: TargetState, now: datetime, actions: Actions) -> None:
        steps = self.policies[ts.target.policy].steps
        while ts.state not in TERMINAL_STATES and ts.waiting_until is None:
            if ts.pc >= len(steps):
                ts.state, ts.settled_at = "unreachable", now
                actions.records.append(self._record(ts, Rec.UNREACHABLE, now, payload={"recipients": ts.recipients}))
                return
            step, index = steps[ts.pc], ts.pc
            ts.pc += 1
            getattr(self, f"_step_{step.kind}")(ts, step, index, now, actions)

    def _step_notify(self, ts: TargetState, step: Step, index: int, now: datetime, actions: Actions) -> None:
        channels = [c.value for c in step.notify or []]
        if self.night and not ts.first_notify_done and "voice" not in channels[:1]:
            channels = ["voice", *[c for c in channels if c != "voice"]]  # 叫醒: wake them first
        ts.first_notify_done = True
        ts.last_channels = channels
        ts.outstanding = []
        for pid in ts.recipients:
            ts.outstanding += self._send(ts, self._contact(ts, pid), channels, "notify", index, now, actions)
        if ts.state == "pending":
            ts.state = "notified"

    def _step_wait_ack(self, ts: TargetState, step: Step, index: int, now: datetime, actions: Actions) -> None:
        if ts.outstanding:
            ts.wait = step.wait_ack or timedelta(0)
            ts.waiting_until = now + ts.wait  # moved to the gateway's acceptance + wait by `accepted()`
        else:
            actions.records.append(self._record(ts, Rec.WAIT_SKIPPED, now, payload={"step": index, "reason": "every channel failed"}))

    def _step_repeat(self, ts: TargetState, step: Step, index: int, now: datetime, actions: Actions) -> None:
        done = ts.repeats.get(index, 0)
        if done < (step.repeat or 0):
            ts.repeats[index] = done + 1
            ts.pc = ts.block_start
            actions.records.append(self._record(ts, Rec.REPEAT, now, payload={"step": index, "round": done + 2}))
        else:
            ts.block_start = index + 1

    def _step_escalate(self, ts: TargetState, step: Step, index: int, now: datetime, actions: Actions) -> None:
        ts.block_start = index + 1
        contact = self._recipient(ts, step.escalate or "")
        if contact is None or contact.person_id in ts.recipients:
            reason = "no such person in the directory" if contact is None else "already responsible"
            actions.records.append(self._record(ts, Rec.ESCALATION_SKIPPED, now, payload={"to": step.escalate, "reason": reason}))
            return
        ts.recipients.append(contact.person_id)
        self._index(ts.target.key, contact.person_id)
        ts.state = "escalated"
        channels = [c.value for c in step.channels] if step.channels else (ts.last_channels or ["sms", "voice"])
        actions.records.append(self._record(ts, Rec.ESCALATED, now, person_id=contact.person_id,
                                            payload={"to": step.escalate, "name": contact.name, "channels": channels}))
        ts.outstanding = self._send(ts, contact, channels, "escalate", index, now, actions)

    def _step_inform(self, ts: TargetState, step: Step, index: int, now: datetime, actions: Actions) -> None:
        contact = self._recipient(ts, step.inform or "")
        if contact is None:
            actions.records.append(self._record(ts, Rec.INFORM_SKIPPED, now, payload={"to": step.inform, "reason": "no such person"}))
            return
        channels = [c.value for c in step.channels] if step.channels else ["sms"]
        self._send(ts, contact, channels, "inform", index, now, actions, count=False)
        actions.records.append(self._record(ts, Rec.INFORMED, now, person_id=contact.person_id, payload={"to": step.inform}))

    # ------------------------------------------------------------- answers
    def acknowledge(self, ack: Ack, late: Callable[[], bool] | None = None) -> Actions:
        """Apply an answer. An answer for a target already settled (someone else acknowledged, or it was
        canceled) is recorded as `ack.late` when `late()` says so (the host's workflow.patched check),
        else dropped as before."""
        actions = Actions()
        priv = self._private()
        seen = priv.get("_seen")
        if seen is None:
            seen = priv["_seen"] = set(self.seen_refs)
        if ack.ref and ack.ref in seen:
            return actions
        if ack.ref:
            self.seen_refs.append(ack.ref)
            seen.add(ack.ref)
        for ts in self._answering_for(ack.person_id):
            if ack.target_keys is not None and ts.target.key not in ack.target_keys:
                continue
            if ack.person_id not in ts.recipients:
                continue
            if ts.state in ("acknowledged", "canceled"):
                if ts.ack_by != ack.person_id and late is not None and late():  # (a repeat answer is no news)
                    actions.records.append(self.late_record(ts, ack))
                continue
            late_ = ts.state == "unreachable"
            ts.state, ts.waiting_until, ts.outstanding, ts.settled_at = "acknowledged", None, [], ack.at
            ts.acknowledged_at, ts.ack_channel, ts.ack_by = ack.at, ack.channel, ack.person_id
            actions.records.append(self._record(
                ts, Rec.ACK, ack.at, person_id=ack.person_id, channel=ack.channel, actor=ack.actor or ack.person_id,
                payload={"note": ack.note, "late": late_, "by_deputy": ack.person_id != ts.target.person.person_id,
                         "ref": ack.ref}))
        return actions

    def late_record(self, ts: TargetState, ack: Ack) -> Record:
        """An answer that came after the target was settled: who, how, when, how late, what had happened."""
        since = ts.settled_at or ts.acknowledged_at
        return self._record(
            ts, Rec.ACK_LATE, ack.at, person_id=ack.person_id, channel=ack.channel, actor=ack.actor or ack.person_id,
            step=late_step(ts.target.key, ack.person_id, ack.ref or ack.at.isoformat()),
            payload={"note": ack.note, "late": True, "state_at_answer": ts.state, "ref": ack.ref,
                     "by_deputy": ack.person_id != ts.target.person.person_id,
                     "late_from": since.isoformat() if since else None,
                     "late_by_s": round((ack.at - since).total_seconds(), 3) if since else None,
                     "acknowledged_by": ts.ack_by})

    def accepted(self, times: dict[str, datetime]) -> None:
        """The gateway accepted these sends at these times: each waiting target's window counts from the
        latest acceptance of its round, so a message that left late still gets its whole wait. Only ever
        later, never earlier: the workflow's clock and the activity's may differ (a test server's clock
        runs ahead), and the decision time plus the wait is the least anyone gets."""
        if not times:
            return
        for ts in self.targets.values():
            if ts.waiting_until is None or ts.wait is None or ts.state in TERMINAL_STATES:
                continue
            left = [times[k] for k in ts.outstanding if k in times]
            if left:
                ts.waiting_until = max(ts.waiting_until, max(left) + ts.wait)

    def report(self, rep: Report) -> Actions:
        actions = Actions()
        key = self.send_index.get(rep.send_key)
        ts = self.targets.get(key or "")
        if ts is None:
            return actions
        actions.records.append(self._record(ts, Rec.DELIVERY, rep.at, payload={"send": rep.send_key, "status": rep.status,
                                                                              "detail": rep.detail},
                                            step=f"delivery/{rep.send_key}/{rep.status}"))
        if ts.state in TERMINAL_STATES:
            return actions
        if rep.status == "declined":  # keypress 2: cannot respond -> escalate at once
            steps = self.policies[ts.target.policy].steps
            nxt = next((i for i in range(ts.pc, len(steps)) if steps[i].kind == "escalate"), len(steps))
            ts.pc, ts.waiting_until, ts.outstanding = nxt, None, []
        elif rep.status in FAILED_STATUSES and rep.send_key in ts.outstanding:
            ts.outstanding.remove(rep.send_key)
            if not ts.outstanding and ts.waiting_until is not None:
                ts.waiting_until = None  # every channel of this round failed: move on now
        return actions

    def cancel(self, now: datetime, reason: str, purpose: Literal["cancel", "update"] = "cancel") -> Actions:
        """Stop every target; tell each person already reached."""
        actions = Actions()
        for ts in self.targets.values():
            reached = ts.sends_total > 0
            if ts.state not in ("acknowledged", "unreachable", "canceled"):
                ts.state, ts.waiting_until, ts.outstanding, ts.settled_at = "canceled", None, [], now
                actions.records.append(self._record(ts, Rec.CANCELED, now, payload={"reason": reason}))
            if reached:
                for pid in ts.recipients:
                    self._send(ts, self._contact(ts, pid), ["sms"], purpose, 0, now, actions, count=False,
                               suffix=f"{purpose}-{reason}")
        return actions

    # ------------------------------------------------------------- helpers
    def _contact(self, ts: TargetState, person_id: str) -> Contact:
        t = ts.target
        for c in (t.person, t.deputy, t.superior, *t.others.values()):
            if c is not None and c.person_id == person_id:
                return c
        raise KeyError(person_id)

    def _recipient(self, ts: TargetState, who: str) -> Contact | None:
        t = ts.target
        if who == "deputy":
            return t.deputy
        if who == "superior":
            return t.superior
        return t.others.get(who)

    def _send(self, ts: TargetState, contact: Contact, channels: list[str], purpose: str, step: int, now: datetime,
              actions: Actions, count: bool = True, suffix: str = "") -> list[str]:
        keys = []
        ts.sends_total += 1 if count else 0
        round_no = ts.repeats.get(max(ts.repeats) if ts.repeats else -1, 0)
        for channel in channels:
            key = f"{self.run_key}/{ts.target.key}/{step}.{round_no}/{contact.person_id}/{channel}{('/' + suffix) if suffix else ''}"
            to = contact.address(channel)
            if to is None:
                actions.records.append(self._record(ts, Rec.NO_CHANNEL, now, person_id=contact.person_id, channel=channel,
                                                    step=f"nochannel/{key}"))
                continue
            if key in self.send_index:
                continue
            self.send_index[key] = ts.target.key
            actions.sends.append(Send(key=key, target_key=ts.target.key, person_id=contact.person_id, name=contact.name,
                                      to=to, channel=channel, purpose=purpose, priority=ts.target.priority,
                                      about=ts.target.label))
            if count:
                keys.append(key)
        return keys

    def _record(self, ts: TargetState, kind: str, at: datetime, *, person_id: str | None = None, channel: str | None = None,
                actor: str = "system", payload: dict[str, Any] | None = None, step: str | None = None) -> Record:
        step_id = step or f"{ts.target.key}/{kind}/{ts.pc}.{sum(ts.repeats.values())}/{person_id or ''}{channel or ''}"
        return Record(kind=kind, step_id=step_id, target_key=ts.target.key, person_id=person_id or ts.target.person.person_id,
                      channel=channel, actor=actor, at=at, state=ts.state, payload=payload or {})


def late_step(target_key: str, person_id: str, ref: str) -> str:
    """The step id of a late answer: the same whether the workflow or the store (after it ended) records it,
    so an answer recorded by both is one event."""
    return f"ack.late/{target_key}/{person_id}/{ref}"


def record_late() -> bool:
    """Inside a workflow: record late answers (new histories), drop them as before (old histories)."""
    return workflow.patched(LATE_ANSWERS)


# ----------------------------------------------------------------- answers to ended episodes


class EpisodeLike(Protocol):
    name: str
    esc: Escalation


def late_answers(episodes: Sequence[EpisodeLike], acks: list[Ack], live: Callable[[EpisodeLike], bool], *,
                 unreachable_acks: bool = False) -> list[tuple[str, EpisodeLike | None, Record | None]]:
    """What becomes of each answer a procedure's workflow receives, one (outcome, episode, record) per ack:

    - "taken": a running episode waits for the person's answer ("late" when a running episode has settled
      their target otherwise already: it records the answer itself, `Escalation.acknowledge`);
    - "late": it answers an episode that has ended: a late answer for the workflow to record
      (`<kind>.ack.late` through that episode's flush), once per workflow and answer, under the step id the
      store uses when the workflow is gone (`late_step("-", …)`), so one answer recorded both ways is one
      event. The latest ended episode that called the person gets it. (`unreachable_acks`: the workflow
      applies an answer for an unreachable target itself, as a late acknowledgement: "late", no record here);
    - "repeat": the person's own answer again, or an answer already seen (by its ref): no news;
    - "none": no episode of this workflow called the person."""
    out: list[tuple[str, EpisodeLike | None, Record | None]] = []
    for ack in acks:
        def mine(ts: TargetState) -> bool:
            return ack.person_id in ts.recipients and (ack.target_keys is None or ts.target.key in ack.target_keys)

        running = [ts for ep in episodes if live(ep) for ts in ep.esc.targets.values() if mine(ts)]
        # a running episode records it itself: on time, or late (`Escalation.acknowledge`)
        if any(ts.state not in TERMINAL_STATES for ts in running):
            out.append(("taken", None, None))
            continue
        if any(ts.ack_by != ack.person_id for ts in running):
            out.append(("late", None, None))
            continue
        outcome: tuple[str, EpisodeLike | None, Record | None] = ("repeat" if running else "none", None, None)
        for ep in reversed(episodes):
            if live(ep):
                continue
            called = [ts for ts in ep.esc.targets.values() if mine(ts)]
            if not called:
                continue
            if any(ts.ack_by == ack.person_id for ts in called) or (ack.ref and ack.ref in ep.esc.seen_refs):
                outcome = ("repeat", ep, None)
                break
            if unreachable_acks and any(ts.state == "unreachable" for ts in called):
                outcome = ("late", ep, None)
                break
            ts = next((t for t in called if t.state in TERMINAL_STATES), called[0])
            rec = ep.esc.late_record(ts, ack)
            rec.step_id, rec.step_global = late_step("-", ack.person_id, ack.ref or ack.at.isoformat()), True
            if rec.payload["late_by_s"] is not None:  # (the answer's clock may run behind the workflow's)
                rec.payload["late_by_s"] = max(rec.payload["late_by_s"], 0.0)
            rec.payload.update({"episode": ep.name, "recorded_by": "workflow",
                                "workflow_id": workflow.info().workflow_id})
            outcome = ("late", ep, rec)
            break
        out.append(outcome)
    return out


def record_late_answers(episodes: Sequence[EpisodeLike], acks: list[Ack], live: Callable[[EpisodeLike], bool],
                        flush: Callable[[Any, Actions], Awaitable[Any]], tasks: dict[str, asyncio.Task], *,
                        unreachable_acks: bool = False) -> list[dict[str, Any]]:
    """Inside a procedure's signal or update handler, after the answers went to the running episodes: record
    every answer to an ended episode that no running episode takes (`late_answers`), through the episode's
    own flush, as a task kept in `tasks` so that the workflow's end and continue-as-new wait for it. New
    histories only (`LATE_EPISODES`); old ones dropped them. Returns what became of each answer
    ({"recorded": "taken" | "late" | "repeat" | "none", "late_by_s": …}), for the API to say."""
    found = late_answers(episodes, acks, live, unreachable_acks=unreachable_acks) if acks else []
    if not any(o == "late" and r is not None for o, _, r in found) or not workflow.patched(LATE_EPISODES):
        # (old histories: everything went the way it went before, "taken")
        return [{"recorded": "taken" if o == "late" and r is not None else o, "late_by_s": None} for o, _, r in found]
    out = []
    for outcome, ep, rec in found:
        if outcome == "late" and ep is not None and rec is not None:
            if rec.payload.get("ref") in ep.esc.seen_refs:  # the same answer twice in one batch
                out.append({"recorded": "repeat", "late_by_s": None})
                continue
            if rec.payload.get("ref"):
                ep.esc.seen_refs.append(rec.payload["ref"])
            tasks[f"late/{rec.step_id}"] = asyncio.create_task(flush(ep, Actions(records=[rec])))
        out.append({"recorded": outcome, "late_by_s": rec.payload.get("late_by_s") if rec else None})
    return out


# ----------------------------------------------------------------- the host loop


class Inbox:
    """Answers and reports received by signal, applied by the host loop in arrival order."""

    def __init__(self) -> None:
        self.items: list[Ack | Report] = []
        self.stopped: str | None = None

    def put(self, items: list[Ack | Report]) -> None:
        self.items.extend(items)

    def drain(self) -> list[Ack | Report]:
        items, self.items = self.items, []
        return items


async def drive(esc: Escalation, inbox: Inbox, flush: Callable[[Actions], Awaitable[FlushResult | None]],
                until: Callable[[], bool] = lambda: False) -> None:
    """Run an escalation to its end: every target acknowledged, unreachable or canceled.

    One timer for all targets (the earliest deadline); a signal wakes the loop at
    once. `flush` sends and records a batch (activities) and may return what it got
    back: the waits then count from the gateway's acceptance of each send, not from
    the moment the workflow decided to send. `until` ends it early.
    """
    pending = Actions()
    while True:
        for item in inbox.drain():
            pending.extend(esc.acknowledge(item, record_late) if isinstance(item, Ack) else esc.report(item))
        pending.extend(esc.advance(workflow.now()))
        if pending:
            batch, pending = pending, Actions()
            result = await flush(batch)
            if result is not None and result.accepted and workflow.patched("wait-from-acceptance"):
                esc.accepted(result.accepted)
            continue  # answers may have arrived while flushing
        if esc.done or until():
            return
        deadline = esc.next_deadline()
        timeout = max(deadline - workflow.now(), timedelta(0)) if deadline else None
        try:
            await workflow.wait_condition(lambda: bool(inbox.items) or until(), timeout=timeout)
        except asyncio.TimeoutError:
            pass
