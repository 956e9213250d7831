"""Episodes: how a procedure runs the shared escalation interpreter (workflows/escalation/).

An episode is one run of the interpreter inside a procedure: the commander called to the HQ, an
overdue report chased, a unit's missing summary escalated. The procedure opens it with its
targets; the host drives it (timers, answers, gateway reports) as a task of its own, stops it
early when what it chased has happened (telling whoever was reached), records answers that come
after it ended, and carries its state across continue-as-new.

A procedure's workflow mixes in `EpisodeHost` and provides:

- `self.s.episodes` (a list of `Episode`), and where answers wait while no episode runs
  (`_stash()`: the state's `pending`, carried across continue-as-new);
- `_flush(ep, actions)`: send and record one batch of the episode (an activity), returning the
  interpreter's `FlushResult`.

It gets the `events` signal and the `answers` update that api/services/answers routes
acknowledgements and gateway reports to, one for every procedure.
"""
from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any, ClassVar

from pydantic import BaseModel, Field
from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from workflows.callout import ShardEvents
    from workflows.escalation import Ack, Actions, Escalation, FlushResult, Inbox, Report, drive, record_late_answers


class Episode(BaseModel):
    """One run of the escalation interpreter: who is called about what (`kind`, `ref`), and how far it got."""

    name: str = Field(description="kind/ref, unique in the procedure")
    kind: str
    ref: str
    label: str = ""
    text: str = ""
    due_at: datetime | None = None
    roles: dict[str, str] = Field(default_factory=dict, description="target key -> the roles it is called for")
    esc: Escalation
    stop: str | None = Field(default=None, description="why it is stopped early; whoever was reached is told")
    silent: bool = Field(default=False, description="stopped without telling anyone")
    done: bool = False


class EpisodeHost:
    """The episodes of one procedure's workflow (see the module's docstring for what the workflow provides)."""

    unreachable_acks: ClassVar[bool] = False  # an answer of a person the episode gave up on still acknowledges

    inboxes: dict[str, Inbox]
    tasks: dict[str, asyncio.Task]
    late: list[Ack]
    changed: bool
    pausing: bool
    opened: bool

    def _init_episodes(self) -> None:
        self.inboxes, self.tasks, self.late = {}, {}, []
        self.changed = self.pausing = self.opened = False

    # ------------------------------------------------------------- what the procedure provides

    def _stash(self) -> ShardEvents:
        """Where answers wait while no episode runs (before the procedure opened, while it pauses)."""
        return self.s.pending  # type: ignore[attr-defined]

    def _clear_stash(self) -> None:
        self.s.pending = ShardEvents()  # type: ignore[attr-defined]

    async def _flush(self, ep: Any, actions: Actions) -> FlushResult:
        raise NotImplementedError

    # ------------------------------------------------------------- open, resume, stop

    def open_episode(self, ep: Episode) -> None:
        self.s.episodes.append(ep)  # type: ignore[attr-defined]
        self._run(ep)

    def start_escalation(self, kind: str, ref: str, policies: dict, targets: list, **fields: Any) -> Episode:
        """A new episode calling `targets` under `policies` (name -> policy)."""
        name = f"{kind}/{ref}"
        esc = Escalation.start(f"{workflow.info().workflow_id}/{name}", policies, targets)
        ep = Episode(name=name, kind=kind, ref=ref, esc=esc, **fields)
        self.open_episode(ep)
        return ep

    def resume_episodes(self) -> None:
        """The procedure is open (or continued as new): its episodes run, the answers that waited are delivered."""
        self.opened = True
        for ep in self.s.episodes:  # type: ignore[attr-defined]
            if not ep.done:
                self._run(ep)
        self._deliver(self._stash())
        self._clear_stash()

    def stop_episodes(self, match: Any, reason: str, silent: bool = False) -> None:
        """Stop the running episodes `match(ep)` accepts; whoever was reached is told `reason` (unless silent)."""
        for ep in self.s.episodes:  # type: ignore[attr-defined]
            if not ep.done and ep.stop is None and match(ep):
                ep.stop, ep.silent = reason, silent

    def episode(self, name: str) -> Any:
        return next((e for e in self.s.episodes if e.name == name), None)  # type: ignore[attr-defined]

    def _run(self, ep: Any) -> None:
        self.inboxes[ep.name] = Inbox()
        self.tasks[ep.name] = asyncio.create_task(self._drive(ep, self.inboxes[ep.name]))

    async def _drive(self, ep: Any, inbox: Inbox) -> None:
        async def flush(actions: Actions) -> FlushResult:
            result = await self._flush(ep, actions)
            inbox.put(result.reports)  # failures the gateway reported at once
            return result

        await drive(ep.esc, inbox, flush, until=lambda: ep.stop is not None or self.pausing)
        if ep.stop is not None and not self.pausing:  # what it chased happened: stop, and tell whoever was reached
            actions = ep.esc.cancel(workflow.now(), ep.stop)
            if getattr(ep, "silent", False):
                actions.sends = []
            if actions:
                await flush(actions)
        ep.done = ep.esc.done
        self.changed = True

    # ------------------------------------------------------------- answers

    @workflow.signal(name="events")
    def events(self, batch: ShardEvents) -> None:
        """Acknowledgements and gateway reports, routed by api/services/answers like a call-out shard's."""
        self._deliver(batch)

    @workflow.update(name="answers")
    def answers(self, batch: ShardEvents) -> list[dict[str, Any]]:
        """The `events` signal, answering what became of each acknowledgement (taken, recorded late, a repeat),
        for the API to say so (api/services/answers)."""
        return self._deliver(batch)

    def _deliver(self, batch: ShardEvents) -> list[dict[str, Any]]:
        if not self.opened or self.pausing:  # applied once the episodes run (again)
            self._stash().acks.extend(batch.acks)
            self._stash().reports.extend(batch.reports)
            return [{"recorded": "taken", "late_by_s": None} for _ in batch.acks]
        episodes = self.s.episodes  # type: ignore[attr-defined]
        for ep in episodes:
            if not ep.done and ep.name in self.inboxes:
                self.inboxes[ep.name].put([*batch.acks, *batch.reports])
        if self.unreachable_acks:
            self.late.extend(batch.acks)  # taken by `apply_late_acks` when an ended episode gave up on the person
        return record_late_answers(episodes, batch.acks, lambda ep: not ep.done and ep.name in self.inboxes,
                                   self._flush, self.tasks, unreachable_acks=self.unreachable_acks)

    async def apply_late_acks(self) -> None:
        """Answers of persons an ended episode had given up on (unreachable): still acknowledgements."""
        while self.late:
            ack = self.late.pop(0)
            for ep in self.s.episodes:  # type: ignore[attr-defined]
                if ep.done and any(ack.person_id in ts.recipients and ts.state == "unreachable"
                                   for ts in ep.esc.targets.values()):
                    actions = ep.esc.acknowledge(ack)
                    if actions:
                        await self._flush(ep, actions)

    # ------------------------------------------------------------- the end, and continue-as-new

    async def episodes_finished(self) -> None:
        """Every running episode (and every late answer being recorded) has ended."""
        await asyncio.gather(*self.tasks.values())

    async def pause_episodes(self) -> None:
        """Before continue-as-new: the episodes stop where they are (their state travels in the input) and the
        answers not yet applied wait in the stash."""
        self.pausing = True
        await workflow.wait_condition(lambda: workflow.all_handlers_finished() and all(t.done() for t in self.tasks.values()))
        stash = self._stash()
        for inbox in self.inboxes.values():
            for item in inbox.drain():
                bucket = stash.reports if isinstance(item, Report) else stash.acks
                if item not in bucket:
                    bucket.append(item)  # type: ignore[arg-type]
        stash.acks.extend(a for a in self.late if a not in stash.acks)  # late answers, not yet applied
