"""The monthly readiness check 每月调度 (seed 003 篇四: 每月调度一次各应急救援力量值班值守情况).

A Temporal Schedule (api/services/duty/schedules.py, `readiness-monthly`) starts `ReadinessCheckWorkflow` once a
month. It calls every rescue team of the register with a duty phone through the shared escalation interpreter
(the policy: definitions/duty/readiness.yaml): a voice call to the team's 24-hour duty phone, 1 = on duty at full
strength, 2 = not; a team that does not answer is escalated to its leader (the target's `superior`), then the duty
chief is told. Each answer is recorded (ready / not ready / no answer) in the store and the audit trail; a team
that answers 2 or not at all is marked 不能出动 in the register. The check ends with a summary to the duty chief.

A keypress 2 reaches the workflow as a `declined` report of its send: the workflow takes it as the team's answer
(an acknowledgement with the answer "not ready") before the interpreter sees the report, so it escalates nobody.
No I/O here: activities/readiness.py opens, records and closes; `duty.flush` sends (procedure "readiness").
"""
from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field
from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from definitions.schema.duty import ReadinessSettings
    from workflows.callout import ShardEvents
    from workflows.common import ACTIVITY, Event
    from workflows.duty import duty_flush
    from workflows.escalation import TERMINAL_STATES, Ack, Actions, Escalation, FlushResult, Inbox, Report, Target, drive
    from workflows.kit.events import Readiness as Kinds
    from workflows.kit.names import Resources

DECLINED_REF = "key2:"
"""The ref of the acknowledgement a keypress 2 becomes (the answer "not ready")."""

ANSWERS_WITH_FLUSH = "readiness-answers-with-flush"
"""Patch: a batch's answers (their events, the register marked) are written in the transaction of the batch's
`duty.flush`, which writes the view that shows them; before it, by `resources.readiness_record` after the flush,
and for that moment a team read ready / not ready / no answer without its answer in the trail."""


def team_person(team_id: str) -> str:
    """The person id the interpreter and the outbox know a team's duty phone by (no person of the directory)."""
    return f"team:{team_id}"


class ReadinessInput(BaseModel):
    settings: ReadinessSettings = Field(default_factory=ReadinessSettings)
    version: str = ""
    started_by: str = Field(default="schedule", description="schedule, or the person who started it by hand")


class TeamView(BaseModel):
    team_id: str
    name: str
    duty_phone: str | None = None
    leader_id: str | None = None
    leader_name: str = ""
    state: str = Field(default="pending", description="pending | called | ready | not_ready | no_answer")
    answered_by: str | None = Field(default=None, description="duty_phone | leader | another person's id")
    channel: str | None = None
    answered_at: datetime | None = None
    escalated: bool = False


class ReadinessView(BaseModel):
    run_id: str = ""
    status: str = "opening"
    started_by: str = "schedule"
    opened_at: datetime | None = None
    closed_at: datetime | None = None
    teams: list[TeamView] = Field(default_factory=list)

    def counts(self) -> dict[str, int]:
        out = {"total": len(self.teams), "ready": 0, "not_ready": 0, "no_answer": 0}
        for t in self.teams:
            if t.state in out:
                out[t.state] += 1
        return out


class OpenRequest(BaseModel):
    run_id: str
    temporal_run_id: str
    settings: ReadinessSettings
    version: str
    started_by: str
    at: datetime


class Opened(BaseModel):
    targets: list[Target] = Field(default_factory=list)
    teams: list[TeamView] = Field(default_factory=list)
    skipped: list[dict] = Field(default_factory=list, description="teams without a duty phone or a leader to call")


class RecordRequest(BaseModel):
    run_id: str
    temporal_run_id: str
    events: list[Event] = Field(default_factory=list)
    view: ReadinessView
    unready: list[str] = Field(default_factory=list, description="teams to mark 不能出动 in the register")
    ready: list[str] = Field(default_factory=list, description="teams that answered 1 (an 不能出动 team is ready again)")


class CloseRequest(BaseModel):
    run_id: str
    temporal_run_id: str
    view: ReadinessView


class ReadinessSummary(BaseModel):
    run_id: str
    total: int = 0
    ready: int = 0
    not_ready: int = 0
    no_answer: int = 0
    not_ready_teams: list[str] = Field(default_factory=list)
    no_answer_teams: list[str] = Field(default_factory=list)
    sent_to: list[str] = Field(default_factory=list)


@workflow.defn
class ReadinessCheckWorkflow:
    @workflow.init
    def __init__(self, inp: ReadinessInput) -> None:
        self.v = ReadinessView(started_by=inp.started_by)
        self.esc: Escalation | None = None
        self.inbox = Inbox()
        self.pending: list[Ack | Report] = []
        self.sent: dict[str, str] = {}  # send key -> the person it called
        self.io = asyncio.Lock()

    @workflow.run
    async def run(self, inp: ReadinessInput) -> ReadinessSummary:
        wid = workflow.info().workflow_id
        self.v.run_id, self.v.opened_at = wid, workflow.now()
        opened: Opened = await workflow.execute_activity(
            Resources.READINESS_OPEN, OpenRequest(run_id=wid, temporal_run_id=workflow.info().run_id,
                                                  settings=inp.settings, version=inp.version,
                                                  started_by=inp.started_by, at=workflow.now()),
            result_type=Opened, **ACTIVITY)
        self.v.teams, self.v.status = opened.teams, "running"
        self.esc = Escalation.start(f"{wid}/calls", {"call": inp.settings.policy}, opened.targets)
        self._deliver(self.pending)
        self.pending = []
        if opened.targets:
            await drive(self.esc, self.inbox, self._flush)
        await workflow.wait_condition(workflow.all_handlers_finished)
        self.v.status, self.v.closed_at = "closed", workflow.now()
        return await workflow.execute_activity(
            Resources.READINESS_CLOSE, CloseRequest(run_id=wid, temporal_run_id=workflow.info().run_id, view=self.v),
            result_type=ReadinessSummary, **ACTIVITY)

    # ------------------------------------------------------------- the calls

    def _team(self, target_key: str | None) -> TeamView | None:
        return next((t for t in self.v.teams if f"team/{t.team_id}" == target_key), None)

    async def _flush(self, actions: Actions) -> FlushResult:
        events: list[Event] = []
        unready: list[str] = []
        ready: list[str] = []
        now = workflow.now()
        for send in actions.sends:
            self.sent[send.key] = send.person_id
            t = self._team(send.target_key)
            if t is not None and t.state == "pending":
                t.state = "called"
        for r in actions.records:
            t = self._team(r.target_key)
            if t is None or t.state in ("ready", "not_ready", "no_answer"):
                continue
            if r.kind == "escalated":
                t.escalated = True
            elif r.kind == "ack":
                declined = str(r.payload.get("ref") or "").startswith(DECLINED_REF)
                t.state = "not_ready" if declined else "ready"
                t.answered_by = ("duty_phone" if r.person_id == team_person(t.team_id)
                                 else "leader" if r.person_id == t.leader_id else r.person_id)
                t.channel, t.answered_at = r.channel, r.at
                events.append(Event(kind=Kinds.ANSWERED, step_id=f"team/{t.team_id}/answered", actor=r.actor,
                                    channel=r.channel, at=r.at, payload={
                                        "team": t.team_id, "name": t.name, "answer": t.state,
                                        "key": "2" if declined else "1", "answered_by": t.answered_by,
                                        "escalated": t.escalated}))
                (unready if declined else ready).append(t.team_id)
            elif r.kind == "unreachable":
                t.state, t.answered_at = "no_answer", now
                events.append(Event(kind=Kinds.NO_ANSWER, step_id=f"team/{t.team_id}/no_answer", at=now, payload={
                    "team": t.team_id, "name": t.name, "duty_phone": t.duty_phone, "leader": t.leader_id,
                    "escalated": t.escalated}))
                unready.append(t.team_id)
        answered = bool(events or unready or ready)
        together = workflow.patched(ANSWERS_WITH_FLUSH)  # the answers with the view that shows them, in one transaction
        after = self._record_request(events, unready, ready).model_dump(mode="json") if answered and together else None
        result = await duty_flush("readiness", self.v.run_id, "calls", self._context(), actions, self.io, after=after)
        self.inbox.put(result.reports)  # failures the gateway reported at once
        if answered and not together:  # (histories from before the patch: after the flush, by an activity of its own)
            await self._record(events, unready, ready)
        return result

    def _context(self) -> dict[str, Any]:
        return {"view": self.v.model_dump(mode="json")}

    def _record_request(self, events: list[Event], unready: list[str], ready: list[str]) -> RecordRequest:
        return RecordRequest(run_id=self.v.run_id, temporal_run_id=workflow.info().run_id, events=events, view=self.v,
                             unready=unready, ready=ready)

    async def _record(self, events: list[Event], unready: list[str], ready: list[str]) -> None:
        async with self.io:
            await workflow.execute_activity(Resources.READINESS_RECORD, self._record_request(events, unready, ready),
                                            **ACTIVITY)

    # ------------------------------------------------------------- answers

    def _deliver(self, items: list[Ack | Report]) -> list[dict[str, Any]]:
        """Answers and gateway reports to the interpreter; a keypress 2 (a `declined` report) first becomes the
        team's answer "not ready" (an acknowledgement of its target), so it settles the team."""
        assert self.esc is not None
        out, batch = [], []
        for item in items:
            if isinstance(item, Report) and item.status == "declined":
                key = self.esc.send_index.get(item.send_key)
                ts = self.esc.targets.get(key or "")
                pid = self.sent.get(item.send_key)
                if ts is not None and pid is not None and ts.state not in TERMINAL_STATES:
                    batch.append(Ack(person_id=pid, channel="voice", at=item.at, note="按2:不能满员在岗",
                                     target_keys=[ts.target.key], ref=f"{DECLINED_REF}{item.send_key}"))
            if isinstance(item, Ack):
                out.append({"recorded": self._outcome(item), "late_by_s": None})
            batch.append(item)
        self.inbox.put(batch)
        return out

    def _outcome(self, ack: Ack) -> str:
        assert self.esc is not None
        mine = [ts for ts in self.esc.targets.values() if ack.person_id in ts.recipients]
        if any(ts.state not in TERMINAL_STATES for ts in mine):
            return "taken"
        return "repeat" if any(ts.ack_by == ack.person_id for ts in mine) else "none"

    def _take(self, batch: ShardEvents) -> list[dict[str, Any]]:
        if self.esc is None:
            self.pending.extend([*batch.acks, *batch.reports])
            return [{"recorded": "taken", "late_by_s": None} for _ in batch.acks]
        return self._deliver([*batch.acks, *batch.reports])

    @workflow.signal(name="events")
    def events(self, batch: ShardEvents) -> None:
        self._take(batch)

    @workflow.update(name="answers")
    def answers(self, batch: ShardEvents) -> list[dict[str, Any]]:
        """The `events` signal, answering what became of each acknowledgement (api/services/answers)."""
        return self._take(batch)

    @workflow.query
    def state(self) -> ReadinessView:
        return self.v
