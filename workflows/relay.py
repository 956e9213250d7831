"""到户到人 relay: after a village person acknowledges the call-out, they are asked to inform the households in
the danger zones (危险区群众) and to confirm it ("到户 35"); unconfirmed by the deadline, the town head (their
superior in the directory) is called and the duty chief told: the plan's `relay` section
(definitions/schema/callout.py), run by the shared escalation interpreter as one more episode of the call-out
shard (`Relays`, driven beside the shard's own escalation; workflows/callout.py starts it, behind the
`RELAY` patch).

A relay answer is an `Ack` with `households`. It confirms the relay of the person's village (on time: by the
deadline; late: after it, or after the relay was settled or given up); it also acknowledges the call-out when
the person had not yet. Every relay answer is recorded: `relay.confirmed` or `relay.late` (households, by
whom, for whom, on whose behalf), never dropped.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from datetime import datetime

from pydantic import BaseModel, Field
from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from definitions.schema.callout import Relay
    from definitions.schema.common import Level
    from workflows.escalation import (
        Ack, Actions, Escalation, FlushResult, Inbox, Record, Report, Send, Target, drive, record_late)
    from workflows.kit.events import Escalation as Rec
    from workflows.kit.events import Relay as RelayKinds

RELAY = "callout-relay"
"""workflow.patched id: a call-out shard whose plan has a `relay` section runs the relay episode."""
POLICY = "relay"


class RelayFlush(BaseModel):
    """One batch of the relay episode: sends (whole: a relay batch is small) and records."""

    callout_id: str
    workflow_id: str
    run_id: str
    relay: Relay
    drill: bool = False
    sends: list[Send] = Field(default_factory=list)
    records: list[Record] = Field(default_factory=list)


class Relays:
    """The relay episode of one shard: who was asked (`esc`, one target per village target acknowledged), the
    answers of persons whose relay is not open yet (`waiting`), the deadlines (`due`)."""

    def __init__(self, workflow_id: str, relay: Relay, level: Level, targets: list[Target]) -> None:
        self.relay = relay
        self.deadline = relay.deadline_for(level)
        self.esc = Escalation.start(f"{workflow_id}/relay", {POLICY: relay.policy(level)}, [])
        self.inbox = Inbox()
        self.targets = {t.key: t for t in targets if t.tier == relay.tier}
        self.people = {p.person_id for t in self.targets.values() for p in (t.person, t.deputy, t.superior) if p}
        self.due: dict[str, datetime] = {}
        self.overdue: set[str] = set()  # relays whose deadline ran out (the interpreter's timeout)
        self.answers: dict[str, Ack] = {}  # by ref: the households of the interpreter's records
        self.waiting: list[Ack] = []
        self.again: list[Ack] = []  # second confirmations of persons who confirmed already
        self.pending = Actions()
        self.fresh = False
        self.main_done = False
        self.stopped: str | None = None

    # ------------------------------------------------------------- answers and reports

    def take(self, acks: list[Ack]) -> list[Ack]:
        """Relay answers (with households) of persons the relay may ask: to the relay, or waiting until their
        relay opens. Returns the acks the call-out's own escalation gets: every other ack, and the relay answers
        of persons whose relay is not open yet (an answer "到户 35" says the warning arrived)."""
        main = []
        for ack in acks:
            if ack.households is None or ack.person_id not in self.people:
                main.append(ack)
                continue
            if ack.ref:
                if ack.ref in self.answers:
                    continue  # the same answer delivered again
                self.answers[ack.ref] = ack
            routed = self._route(ack)
            if routed is None:
                self.waiting.append(ack)
                main.append(ack)
            elif any(ts.state == "acknowledged" and ts.ack_by == routed.person_id for ts in self._asked(routed.person_id)):
                self.again.append(routed)  # they confirmed before: a second figure (a correction) is news too
            else:
                self.inbox.put([routed])
        return main

    def _route(self, ack: Ack) -> Ack | None:
        """The answer as the relay takes it: from a person it asked (or escalated to), as is; from the village's
        other person (the village person when their deputy was asked, or the other way round), for the person asked,
        answered by them; None while no relay of theirs is open."""
        if self._asked(ack.person_id):
            return ack
        for key, ts in self.esc.targets.items():
            t = self.targets[key]
            if ack.person_id in {c.person_id for c in (t.person, t.deputy) if c}:
                return ack.model_copy(update={"person_id": ts.target.person.person_id,
                                              "actor": ack.actor or ack.person_id})
        return None

    def mine(self, report: Report) -> bool:
        return report.send_key.startswith(self.esc.run_key + "/")

    def _asked(self, person_id: str) -> list:
        return [ts for ts in self.esc.targets.values() if person_id in ts.recipients]

    def repeated(self) -> Actions:
        """Second confirmations by the person who confirmed (the interpreter takes them for no news): recorded."""
        actions = Actions()
        for ack in self.again:
            for ts in self._asked(ack.person_id):
                due = self.due.get(ts.target.key)
                late = due is not None and max(ack.at, workflow.now()) > due
                actions.records.append(Record(
                    kind=LATE if late else CONFIRMED, target_key=ts.target.key, person_id=ack.person_id,
                    step_id=f"{ts.target.key}/again/{ack.person_id}/{ack.ref or ack.at.isoformat()}",
                    channel=ack.channel, actor=ack.actor or ack.person_id, at=ack.at, state=ts.state,
                    payload={"households": ack.households, "by": ack.actor or ack.person_id,
                             "for": ts.target.person.person_id, "reported_by": ack.reported_by,
                             "on_behalf": (ack.actor or ack.person_id) != ts.target.person.person_id, "late": late,
                             "again": True, "ref": ack.ref, "note": ack.note,
                             "due_at": due.isoformat() if due else None}))
        self.again = []
        return actions

    # ------------------------------------------------------------- opening relays

    def acknowledged(self, records: list[Record], now: datetime) -> None:
        """The call-out's records of a flush: each village target acknowledged opens its relay, asking the person
        who acknowledged (the village person, or their deputy)."""
        for r in records:
            t = self.targets.get(r.target_key or "")
            if r.kind != Rec.ACK or t is None or t.key in self.esc.targets:
                continue
            person = next((c for c in (t.person, t.deputy) if c and c.person_id == r.person_id), t.person)
            relay_target = dataclasses.replace(t, person=person, policy=POLICY,
                                               deputy=None if person is not t.person else t.deputy)
            self.esc.add([relay_target])
            due = now + self.deadline
            self.due[t.key] = due
            self.pending.records.append(Record(
                kind=REQUESTED, step_id=f"{t.key}/requested", target_key=t.key, person_id=person.person_id, at=now,
                state="requested", payload={"village": t.org_unit, "label": t.label, "due_at": due.isoformat(),
                                            "acknowledged_by": r.person_id}))
            self.fresh = True
        for ack in list(self.waiting):
            if (routed := self._route(ack)) is not None:
                self.waiting.remove(ack)
                self.inbox.put([routed])

    # ------------------------------------------------------------- records

    def words(self, actions: Actions) -> Actions:
        """The interpreter's answers in the relay's words: an acknowledgement is `relay.confirmed` (in time) or
        `relay.late` (after the deadline, or after the relay was given up), an answer after the relay was
        settled is `relay.late`; each with the households, who answered, for whom, on whose behalf."""
        for r in actions.records:
            if r.kind in (Rec.TIMEOUT, Rec.ESCALATED, Rec.UNREACHABLE) and r.target_key:
                self.overdue.add(r.target_key)  # its deadline passed: any confirmation from now on is late
            if r.kind not in (Rec.ACK, Rec.ACK_LATE):
                continue
            ack = self.answers.get(r.payload.get("ref") or "")
            t = self.esc.targets.get(r.target_key or "")
            due = self.due.get(r.target_key or "")
            late = (r.kind == Rec.ACK_LATE or bool(r.payload.get("late")) or r.target_key in self.overdue
                    or (due is not None and r.at > due))
            # (how late: by the answer's time, or by the workflow's when it heard it after the deadline had run out)
            late_by = max((max(r.at, workflow.now()) - due).total_seconds(), 0.0) if late and due else None
            r.kind = LATE if late else CONFIRMED
            for_whom = t.target.person.person_id if t else r.person_id
            r.payload.update({"households": ack.households if ack else None, "by": r.actor, "for": for_whom,
                              "on_behalf": r.actor != for_whom, "late": late,
                              "reported_by": ack.reported_by if ack else None,
                              "due_at": due.isoformat() if due else None,
                              "late_by_s": round(late_by, 3) if late_by is not None else None})
        return actions

    def unopened(self, now: datetime) -> Actions:
        """Relay answers of persons whose relay never opened (the call-out ended or was canceled before they
        acknowledged): recorded late, not dropped."""
        actions = Actions()
        for ack in self.waiting:
            t = next((t for t in self.targets.values()
                      if ack.person_id in {c.person_id for c in (t.person, t.deputy, t.superior) if c}), None)
            actions.records.append(Record(
                kind=LATE, step_id=f"late/{t.key if t else '-'}/{ack.person_id}/{ack.ref or ack.at.isoformat()}",
                target_key=t.key if t else None, person_id=ack.person_id, channel=ack.channel,
                actor=ack.actor or ack.person_id, at=ack.at, state="not_requested",
                payload={"households": ack.households, "by": ack.actor or ack.person_id, "for": ack.person_id,
                         "on_behalf": bool(ack.actor) and ack.actor != ack.person_id, "late": True,
                         "state_at_answer": "not_requested", "ref": ack.ref, "note": ack.note}))
        self.waiting = []
        return actions

    # ------------------------------------------------------------- the host loop

    async def run(self, flush: Callable[[Actions], Awaitable[FlushResult]]) -> None:
        """Drive the relays as they open, until the call-out's own escalation has ended and every relay is
        settled, or the shard is stopped (then the open relays are canceled without a message: the call-out's
        own cancel tells the persons)."""
        async def words_flush(actions: Actions) -> FlushResult:
            result = await flush(self.words(actions))
            self.inbox.put(result.reports)
            return result

        while True:
            await workflow.wait_condition(lambda: self.fresh or bool(self.inbox.items) or bool(self.again)
                                          or self.main_done or self.stopped is not None)
            self.fresh = False
            if self.pending or self.again:
                batch, self.pending = self.pending.extend(self.repeated()), Actions()
                await words_flush(batch)
            if self.stopped is None:
                await drive(self.esc, self.inbox, words_flush,
                            until=lambda: self.stopped is not None or self.fresh or bool(self.again))
            if self.stopped is not None or (self.main_done and self.esc.done and not self.fresh
                                            and not self.inbox.items and not self.pending and not self.again):
                break
        if self.stopped is not None:
            actions = self.esc.cancel(workflow.now(), self.stopped)
            actions.sends = []
            if actions:
                await words_flush(actions)
        # answers that came while the last batch was written: recorded (late), never dropped
        while True:
            actions = Actions()
            for item in self.inbox.drain():
                if isinstance(item, Ack):
                    actions.extend(self.esc.acknowledge(item, record_late))
            actions.extend(self.unopened(workflow.now())).extend(self.repeated())
            if not actions:
                break
            await words_flush(actions)


REQUESTED, CONFIRMED, LATE = RelayKinds.RECORDS
"""The relay's own records (`relay.requested`, `relay.confirmed`, `relay.late`: workflows/kit/events.py)."""
