"""The procedure base: what a procedure's workflow does besides its own steps.

A procedure (activation, reporting, review, …) subclasses `Procedure` and writes only its steps:
its `run()` top to bottom, its update handlers, its rules (a `RuleBook`) and how it builds the
request its record activity takes. The base gives it:

- `record(*events)`: the procedure's audit events and its read model, written by its record
  activity (`RECORD`);
- `call(activity, build, result_type)`: every activity call goes through one lock, one at a time,
  and the request is built inside the lock (`build()`), so that the read model written with a
  batch is the state after the batch;
- `refuse_if(action, req)`: its rules, as an update validator raises them;
- `sleep_until_next(times, until)`: one timer, to the earliest of `times`, woken early by any
  change (an update, a write, an episode that ended) or `until()`;
- `history_is_long()` / `continue_as_new(**update)`: a long procedure continues as new with its
  whole state (`self.s`), its episodes paused and resumed on the other side;
- the episodes of the escalation interpreter (kit/episodes.py).

Workflows hold no I/O: everything here is a timer, an activity or a Temporal command.
"""
from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any, Callable, ClassVar

from pydantic import BaseModel
from temporalio import workflow

from workflows.common import ACTIVITY, Event
from workflows.kit.episodes import EpisodeHost
from workflows.kit.rules import RuleBook


class Procedure(EpisodeHost):
    RECORD: ClassVar[str]  # the activity that appends the events and writes the read model
    RULES: ClassVar[RuleBook]
    wake_on_every_write: ClassVar[bool] = False  # the main loop looks again after every activity, not only records
    activity_options: ClassVar[dict] = ACTIVITY  # timeouts and retries of `call` (a procedure with slow activities: longer)

    inp: Any
    s: Any
    io: asyncio.Lock

    def _init_procedure(self) -> None:
        self._init_episodes()
        self.io = asyncio.Lock()

    # ------------------------------------------------------------- what the procedure provides

    def _record_request(self, events: list[Event]) -> BaseModel:
        """The record activity's request: the events and the procedure's read model (its view) now."""
        raise NotImplementedError

    def _rules_context(self) -> Any:
        """What the rules judge a step against (the state, by default)."""
        return self.s

    # ------------------------------------------------------------- writes

    async def call(self, activity: str, build: Callable[[], BaseModel], result_type: type | None = None) -> Any:
        """Run an activity; its request is built once the writes before it are done."""
        async with self.io:
            result = await workflow.execute_activity(activity, build(), result_type=result_type,
                                                      **self.activity_options)
            if self.wake_on_every_write:
                self.changed = True  # the main loop looks again: new timers, the end, a long history
        return result

    async def record(self, *events: Event) -> None:
        await self.call(self.RECORD, lambda: self._record_request(list(events)))
        self.changed = True  # the main loop looks again: new deadlines, the end, a long history

    # ------------------------------------------------------------- rules

    def refuse_if(self, action: str, req: Any) -> None:
        self.RULES.refuse_if(action, self._rules_context(), req, workflow.now())

    # ------------------------------------------------------------- time

    async def sleep_until_next(self, times: list[datetime], until: Callable[[], bool]) -> None:
        now = workflow.now()
        self.changed = False
        try:
            await workflow.wait_condition(lambda: self.changed or until(),
                                          timeout=max(min(times) - now, timedelta(0)) if times else None)
        except asyncio.TimeoutError:
            pass

    # ------------------------------------------------------------- continue-as-new

    def history_is_long(self) -> bool:
        info = workflow.info()
        return info.get_current_history_length() > self.inp.max_history or info.is_continue_as_new_suggested()

    async def continue_as_new(self, **update: Any) -> None:
        await self.pause_episodes()
        self.s.runs += 1
        workflow.continue_as_new(self.inp.model_copy(update={**update, "state": self.s}))
