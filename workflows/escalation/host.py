"""How a workflow hosts the interpreter: `drive()` (the host loop, written once, with its `Inbox`), whether an
answer after a target was settled is recorded (`record_late`), and what becomes of answers to episodes that
have ended (`late_answers`, `record_late_answers`)."""
from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta
from typing import Any, Protocol

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from workflows.escalation.interpreter import Escalation
    from workflows.escalation.model import (
        FAILED_STATUSES, TERMINAL_STATES, Ack, Actions, FlushResult, Recall, RecallResult, Record, Report, TargetState,
        late_step)

LATE_ANSWERS = "late-answers"
"""workflow.patched id: answers after a target was settled are recorded as late, not dropped."""
LATE_EPISODES = "late-answers-ended-episodes"
"""workflow.patched id: answers to an episode that has ended, delivered to a procedure's workflow that still
runs, are recorded as late, not dropped (its own id: the call-out's `LATE_ANSWERS` marker may sit elsewhere in
a history, and these records are new activity calls)."""
RECALL = "recall"
"""workflow.patched id: a duty officer's 重新呼叫 (`Recall` in the inbox) sends and records; old code had none."""
ANSWERS_AHEAD = "answers-ahead"
"""workflow.patched id: answers are recorded by themselves, at once (the host's `answers` flush), also while a batch
is being sent; old histories recorded them in the next batch, after the one in flight (and awaited a batch's flush
itself, not as a task: the commands of a shard's relay, issued meanwhile, keep their order)."""

STORED_FIRST = "answers-stored-first"
"""workflow.patched id: before a wait runs out, the host asks the store for answers the API has stored but the
workflow has not heard yet (`drive`'s `stored`); old histories escalated by what they had heard."""
STORED_HOLD = timedelta(seconds=60)
"""How long a target whose answer the API has stored, and the workflow has not heard, waits on for it past its
deadline. The answer's signal follows its storing by seconds; a minute covers a busy worker. Past it (the API
stored the answer and then failed to signal it: its sender was told to try again) the wait runs out as before."""
STORED_RECENT = timedelta(seconds=15)
"""Only a deadline that ran out within this long is looked up in the store: an answer stored before a deadline
further back has had that long to reach the workflow by signal (the API signals it 1.5 s p99 after storing it,
issue 25), and is in the inbox already. A worker that keeps up asks at its deadlines; one that is behind (the
escalations late by minutes at 100,000 on a slow machine) asks nothing, where a question at every deadline
had made its answers recorded and its escalations later still."""


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


def recall_result(req: Recall, actions: Actions, flushed: FlushResult | None) -> RecallResult:
    """What a recall did, from the actions `Escalation.recall` returned and what their flush got back."""
    record = next((r for r in actions.records if r.payload.get("ref") == req.ref and "sends" in r.payload), None)
    if record is None:  # settled (or the same ref again): nothing sent, nothing recorded
        return RecallResult(ref=req.ref, target_key=req.target_key, applied=False)
    sends = [s for s in actions.sends if s.key in record.payload["sends"]]
    refused = {r.send_key for r in (flushed.reports if flushed else []) if r.status in FAILED_STATUSES}
    return RecallResult(ref=req.ref, target_key=req.target_key, channels=[s.channel for s in sends],
                        keys=[s.key for s in sends], failed=[s.key for s in sends if s.key in refused],
                        missing=[c for c in record.payload["channels"] if c not in {s.channel for s in sends}])


class Inbox:
    """Answers and reports received by signal, applied by the host loop in arrival order. A recall's outcome
    is kept in `recalled` (by ref) once its batch was flushed; `closed` once the host loop has returned (a
    recall still waiting then is never applied)."""

    def __init__(self) -> None:
        self.items: list[Ack | Report | Recall] = []
        self.stopped: str | None = None
        self.recalled: dict[str, RecallResult] = {}
        self.closed = False

    def put(self, items: list[Ack | Report | Recall]) -> None:
        self.items.extend(items)

    def drain(self) -> list[Ack | Report | Recall]:
        items, self.items = self.items, []
        return items

    def has_answers(self) -> bool:
        return any(isinstance(item, Ack) for item in self.items)

    def take_answers(self) -> list[Ack]:
        """The answers received, in arrival order; reports and recalls stay for the host loop."""
        answers = [item for item in self.items if isinstance(item, Ack)]
        self.items = [item for item in self.items if not isinstance(item, Ack)]
        return answers


async def drive(esc: Escalation, inbox: Inbox, flush: Callable[[Actions], Awaitable[FlushResult | None]],
                until: Callable[[], bool] = lambda: False,
                answers: Callable[[Actions], Awaitable[Any]] | None = None,
                stored: Callable[[list[str]], Awaitable[list[str]]] | None = None) -> None:
    """Run an escalation to its end: every target acknowledged, unreachable or canceled.

    One timer for all targets (the earliest deadline); a signal wakes the loop at
    once. `flush` sends and records a batch (activities) and may return what it got
    back: the waits then count from the gateway's acceptance of each send, not from
    the moment the workflow decided to send. `until` ends it early. `answers`, when
    given, records the answers by themselves, at once: those taken between batches
    before the next batch, those that come while a batch is being sent without waiting
    for it (`answering_meanwhile`). `stored`, when given with `answers`, says which of the targets whose wait has
    run out have an answer the API has stored and the workflow not yet heard: those wait for it (`hold_for_stored`).
    """
    pending = Actions()
    recalls: list[tuple[Recall, Actions]] = []
    # (old histories: answers in the next batch, as before)
    answer_now = answers if answers is not None and workflow.patched(ANSWERS_AHEAD) else None
    # (old histories: escalated by the answers heard)
    hold = (functools.partial(hold_for_stored, esc, inbox, stored, answer_now)
            if stored is not None and answer_now is not None and workflow.patched(STORED_FIRST) else None)
    while True:
        answered = Actions()
        for item in inbox.drain():
            if isinstance(item, Recall):
                if workflow.patched(RECALL):
                    recalls.append((item, esc.recall(item, workflow.now())))
                    pending.extend(recalls[-1][1])
                continue
            if isinstance(item, Ack):
                (answered if answer_now else pending).extend(esc.acknowledge(item, record_late))
            else:
                pending.extend(esc.report(item))
        if answered and answer_now:
            await answer_now(answered)
        if hold is not None:
            await hold()
        pending.extend(esc.advance(workflow.now()))
        result: FlushResult | None = None
        flushed = bool(pending)
        if pending:
            batch, pending = pending, Actions()
            result = await (answering_meanwhile(esc, inbox, flush(batch), answer_now) if answer_now else flush(batch))
            if result is not None and result.accepted and workflow.patched("wait-from-acceptance"):
                esc.accepted(result.accepted)
        for req, done in recalls:  # answered only now: sent and recorded
            inbox.recalled.setdefault(req.ref, recall_result(req, done, result))
        if flushed or recalls or answered:
            recalls = []
            continue  # answers may have arrived while flushing
        if esc.done or until():
            return
        deadline = esc.next_deadline()
        timeout = max(deadline - workflow.now(), timedelta(0)) if deadline else None
        try:
            await workflow.wait_condition(lambda: bool(inbox.items) or until(), timeout=timeout)
        except asyncio.TimeoutError:
            pass


async def record_heard(esc: Escalation, inbox: Inbox, answers: Callable[[Actions], Awaitable[Any]]) -> None:
    """Apply the answers received meanwhile, in arrival order, and record them at once through `answers` (reports and
    recalls stay in the inbox for the host loop)."""
    heard = Actions()
    for ack in inbox.take_answers():
        heard.extend(esc.acknowledge(ack, record_late))
    if heard:
        await answers(heard)


async def hold_for_stored(esc: Escalation, inbox: Inbox, stored: Callable[[list[str]], Awaitable[list[str]]],
                          answers: Callable[[Actions], Awaitable[Any]]) -> None:
    """Before the targets whose wait has run out escalate: ask the store which of them the API has an answer for
    that this workflow has not heard yet (the board shows it 已收到回复), and let those wait `STORED_HOLD` longer
    for it. A person who answered within the wait was escalated when their answer's signal came a few seconds
    after the deadline (the API stores an answer, then signals it; 100 of 11,447 answers within the wait at a
    100,000-person call-out, issue 25). Answers heard meanwhile are recorded at once; targets that fell due
    meanwhile are asked about in turn. Once per deadline, and only of a recent one (`STORED_RECENT`): a held
    target's hold runs out without asking again."""
    while due := esc.due(workflow.now(), workflow.now() - STORED_RECENT):
        esc.hold(due, await stored(due), workflow.now() + STORED_HOLD)
        await record_heard(esc, inbox, answers)


async def answering_meanwhile(esc: Escalation, inbox: Inbox, sending: Awaitable[FlushResult | None],
                              answers: Callable[[Actions], Awaitable[Any]]) -> FlushResult | None:
    """Wait for a batch's flush; answers that come meanwhile are applied and recorded at once through `answers`
    (records only, one such flush at a time), not after the batch. At a district-wide escalation a shard's
    batch of sends takes most of a minute; an answer held behind it was that late on the board (issue 25).
    Answers keep their order among themselves; reports and recalls wait for the batch, as before. The batch
    in flight may still send to a target acknowledged meanwhile, as it would have when the answer came a
    moment later; its records, written after the answer's, leave the target acknowledged (`state_after`)."""
    task = asyncio.ensure_future(sending)
    while True:
        await workflow.wait_condition(lambda: task.done() or inbox.has_answers())
        if task.done():
            return task.result()
        await record_heard(esc, inbox, answers)
