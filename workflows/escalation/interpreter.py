"""The step interpreter: `Escalation` runs the steps of a `Policy` (definitions/schema/escalation.py) for many
targets at once, a pure, deterministic state machine that a workflow drives (workflows/escalation/host.py)."""
from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, Field, PrivateAttr
from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from definitions.schema.escalation import Policy, Step
    from workflows.kit.events import Escalation as Rec  # the records' names (`<episode prefix>.<record>` kinds)
    from workflows.escalation.model import (
        FAILED_STATUSES, TERMINAL_STATES, Ack, Actions, Contact, Recall, Record, Report, Send, Target, TargetState,
        late_step, share_contacts)


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
        for t in sorted(share_contacts(targets), key=lambda t: (t.priority, t.key)):
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

    def due(self, now: datetime, since: datetime) -> list[str]:
        """The targets whose wait ran out after `since` and by `now`, and for which the store was not asked yet at
        this deadline (`hold`): they escalate at the next `advance` unless an answer turns up."""
        return [key for key, ts in self.targets.items()
                if ts.waiting_until is not None and since < ts.waiting_until <= now
                and ts.state not in TERMINAL_STATES and ts.looked_up != ts.waiting_until]

    def hold(self, due: list[str], answered: list[str], until: datetime) -> None:
        """The store was asked about the `due` targets; those `answered` there (an answer stored by the API, not
        heard by the workflow yet) wait on until `until` for it to come, once; the others escalate as they were due."""
        stored = set(answered)
        for key in due:
            ts = self.targets[key]
            if key in stored:
                ts.waiting_until = until
            ts.looked_up = ts.waiting_until

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

    def recall(self, req: Recall, now: datetime) -> Actions:
        """Call a target's person again (重新呼叫), on the channels asked that the target's policy notifies on:
        once per request (`req.ref`); not for a target already acknowledged or canceled. The sends join the
        target's current round (a failure of one does not end the wait early; an answer acknowledges as any
        answer does, late when the target was unreachable), and the request is recorded (`recall`)."""
        actions = Actions()
        ref = f"recall:{req.ref}"
        ts = self.targets.get(req.target_key)
        if ts is None or ref in self.seen_refs or ts.state in ("acknowledged", "canceled"):
            return actions
        self.seen_refs.append(ref)
        allowed = [c.value for step in self.policies[ts.target.policy].steps for c in (step.notify or [])]
        channels = [c for c in dict.fromkeys(req.channels) if c in allowed]
        if not channels:
            return actions
        prefix = f"{self.run_key}/{ts.target.key}/"
        asked = [k for k, v in self.send_index.items() if v == ts.target.key and "/recall-" not in k
                 and "/cancel-" not in k and "/update-" not in k]
        rnd = asked[-1].removeprefix(prefix).split("/", 1)[0] if asked else "0.0"
        contact, keys = ts.target.person, []
        for channel in channels:
            to = contact.address(channel)
            key = f"{prefix}{rnd}/{contact.person_id}/{channel}/recall-{req.ref}"
            if to is None:
                actions.records.append(self._record(ts, Rec.NO_CHANNEL, now, person_id=contact.person_id,
                                                    channel=channel, step=f"nochannel/{key}"))
                continue
            self.send_index[key] = ts.target.key
            keys.append(key)
            actions.sends.append(Send(key=key, target_key=ts.target.key, person_id=contact.person_id, name=contact.name,
                                      to=to, channel=channel, purpose="notify", priority=ts.target.priority,
                                      about=ts.target.label))
        ts.sends_total += 1 if keys else 0
        actions.records.append(self._record(ts, Rec.RECALL, now, person_id=contact.person_id, actor=req.actor,
                                            step=f"{ts.target.key}/recall/{req.ref}",
                                            payload={"channels": channels, "ref": req.ref, "note": req.note,
                                                     "sends": keys}))
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
