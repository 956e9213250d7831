"""Every answer ends here: `acknowledge` tells the workflows waiting for a person's answer that they
answered (an update where the workflow says what became of it, else a signal, coalesced per workflow
under a burst) and records it late through the store for those that have ended. Meanwhile the answer is
shown on its call-out's board (store/answers.py `mark_answered`), before a busy worker has recorded it."""
from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime

import structlog
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.service import RPCError, RPCStatusCode

from api.services.answers import shown
from store.bulk import by_pairs
from store.group import GroupCommit
from store.answers import LateAnswer, mark_answered, record_late, record_late_many
from store.db import session_scope
from store.messages import OutboxMessage
from workflows.callout import CalloutShardWorkflow, ShardEvents
from workflows.escalation import Ack
from workflows.kit.shards import is_shard


log = structlog.get_logger("yingji.answers")


class AnswerError(ValueError):
    """The answer cannot be matched to anything that waits for it (a 4xx, not a 500)."""


class AnswerConflict(AnswerError):
    """The answer was handled already (a 409)."""


class _Batcher:
    """Coalesces answers bound for the same workflow into one signal.

    Under a burst (thousands of people confirming within seconds) one signal per answer
    would queue behind Temporal's signal rate; answers that arrive while a signal to the
    same workflow is in flight ride along in the next one.
    """

    def __init__(self) -> None:
        self.pending: dict[str, list[tuple[ShardEvents, asyncio.Future]]] = {}
        self.busy: set[str] = set()
        self.tasks: set[asyncio.Task] = set()  # the signals in flight, kept (the loop holds tasks only weakly)

    async def send(self, client: Client, workflow_id: str, events: ShardEvents) -> bool:
        fut: asyncio.Future = asyncio.get_running_loop().create_future()
        self.pending.setdefault(workflow_id, []).append((events, fut))
        if workflow_id not in self.busy:
            self.busy.add(workflow_id)
            task = asyncio.create_task(self._drain(client, workflow_id))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)
        return await fut

    async def _drain(self, client: Client, workflow_id: str) -> None:
        try:
            while batch := self.pending.pop(workflow_id, []):
                merged = ShardEvents(acks=[a for e, _ in batch for a in e.acks],
                                     reports=[r for e, _ in batch for r in e.reports])
                try:
                    await client.get_workflow_handle(workflow_id).signal(CalloutShardWorkflow.events, merged)
                    ok: bool | BaseException = True
                except RPCError as exc:
                    # NOT_FOUND: the workflow has ended, nobody waits for the answer any more. Anything
                    # else (Temporal unreachable, …) is the caller's to hear: an answer reported as
                    # taken while Temporal was down would be lost (a 503 makes the sender try again).
                    ok = False if exc.status == RPCStatusCode.NOT_FOUND else exc
                except BaseException as exc:  # noqa: BLE001 - handed to every waiting caller
                    ok = exc
                for _, fut in batch:
                    if not fut.done():
                        fut.set_exception(ok) if isinstance(ok, BaseException) else fut.set_result(ok)
        finally:
            self.busy.discard(workflow_id)


_batcher = _Batcher()


async def signal_events(client: Client, workflow_id: str, events: ShardEvents) -> bool:
    return await _batcher.send(client, workflow_id, events)


ANSWER_UPDATE_TIMEOUT = 15.0
"""Seconds an answer waits for a procedure's workflow to say what became of it before it is signalled instead."""


async def _ask(client: Client, workflow_id: str, ack: Ack) -> dict | None:
    """Give an answer to a procedure's workflow (reporting, activation, review, …) that says what became of it:
    {"recorded": "taken" | "late" | "repeat" | "none", "late_by_s": …}; None when the workflow has ended. A
    workflow without the `answers` update (a call-out shard, or code from before it) hears the signal and
    takes it, as before."""
    if not is_shard(workflow_id):
        try:
            [outcome] = await asyncio.wait_for(client.get_workflow_handle(workflow_id).execute_update(
                "answers", ShardEvents(acks=[ack]), result_type=list[dict]), ANSWER_UPDATE_TIMEOUT)
            return outcome
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                return None
            raise
        except (WorkflowUpdateFailedError, TimeoutError):
            # no such update in that workflow (a shard, code from before it), or no worker answers it now: the
            # signal, which Temporal keeps for the workflow (answers are idempotent by their ref)
            pass
    return {"recorded": "taken"} if await signal_events(client, workflow_id, ShardEvents(acks=[ack])) else None


def waiting_in(s, subject: str, person_id: str) -> set[str]:
    """The workflows that sent to `person_id` in `subject` and wait for their answer."""
    return waiting_many(s, {(subject, person_id)})[(subject, person_id)]


def waiting_many(s, pairs: set[tuple[str, str]]) -> dict[tuple[str, str], set[str]]:
    """`waiting_in` for many (subject, person) at once: one query per subject (store/bulk.py `by_pairs`)."""
    out: dict[tuple[str, str], set[str]] = {p: set() for p in pairs}
    if pairs:
        for subject, person, wid in by_pairs(s, select(OutboxMessage.subject, OutboxMessage.person_id,
                                                       OutboxMessage.workflow_id).where(
                col(OutboxMessage.workflow_id).is_not(None)), OutboxMessage.subject, OutboxMessage.person_id, pairs):
            out[(subject, person)].add(wid)
    return out


def _waiting_workflows(pairs: list[tuple[str, str]]) -> list[set[str]]:
    """The workflows waiting for each (subject, person): one query per subject for the answers that arrive
    together."""
    with session_scope(write=False) as s:
        found = waiting_many(s, set(pairs))
    return [set(found[p]) for p in pairs]


_waiting = GroupCommit(_waiting_workflows)  # (a read: grouped like the writes, one round of queries at a time)


@dataclass
class Answered:
    """What became of an answer: taken by the workflows still waiting (`told`), recorded late through the
    store for those that had ended (`late`), or already on record (a repeat of this person's answer)."""

    told: int = 0
    late: list[dict] = field(default_factory=list)
    ended: int = 0  # workflows that had ended (their share recorded late, or a repeat)

    @property
    def recorded(self) -> str:
        if self.told:
            return "taken"
        return "late" if self.late else "repeat"

    def as_dict(self) -> dict:
        return {"recorded": self.recorded, "workflows": self.told, "late": len(self.late),
                "late_by_s": max((x["late_by_s"] for x in self.late if x.get("late_by_s") is not None), default=None)}


RECORDED_TEXT = {
    "taken": "已确认收到 / Confirmed: your answer is recorded",
    "late": "已记录(逾时应答)/ Recorded late: the call had already ended or moved on",
    "repeat": "此前已应答,已有记录 / Already recorded: you had answered before",
}


def _record_late(answer: LateAnswer, workflow_ids: set[str], running: set[str]) -> list[dict]:
    with session_scope() as s:
        return record_late(s, answer, workflow_ids, running)


def _record_late_many(items: list[tuple[LateAnswer, set[str], set[str]]]) -> list[list[dict]]:
    """Late answers that came together, in one transaction (a burst of repeated replies after a shard ended
    was one write transaction each); if one of them fails, each again on its own."""
    try:
        with session_scope() as s:
            return record_late_many(s, items)
    except IntegrityError:  # another API process recorded one of them meanwhile
        return [_record_late(*item) for item in items]


_late = GroupCommit(_record_late_many)


def _show_many(answers: list[tuple[str, str, datetime]]) -> list[int]:
    with session_scope() as s:
        marked = mark_answered(s, answers)
    shown.tell(marked)  # committed: this process's live boards send them now
    return [0] * len(answers)


_shown = GroupCommit(_show_many)  # the answers that arrive together, shown on their boards in one transaction


async def acknowledge(client: Client, subject: str, person_id: str, channel: str, *, actor: str | None = None,
                      note: str | None = None, ref: str = "", at: datetime | None = None,
                      workflows: set[str] | None = None, households: int | None = None,
                      reported_by: str | None = None, shown: bool = False) -> Answered:
    """Tell every workflow of `subject` that sent to `person_id` that they answered; record the answer as late
    (through the store) for each of those workflows that has ended. Every answer ends on record: nobody
    waiting is not "nothing to do". (`workflows`: those workflows, when the caller has looked them up already.)
    Meanwhile, a call-out's board shows it answered (`shown`: the caller's transaction did that already; a relay's
    到户 with `households` is the relay's row)."""
    at = at or datetime.now(UTC)
    wids = workflows if workflows is not None else await _waiting.submit((subject, person_id))
    if not wids:
        raise AnswerError(f"nobody with id {person_id!r} was called in {subject!r}")
    showing = None if shown or households is not None else asyncio.ensure_future(
        _shown.submit((subject, person_id, at)))
    try:
        return await _tell(client, subject, person_id, channel, wids, actor=actor, note=note, ref=ref, at=at,
                           households=households, reported_by=reported_by)
    finally:
        if showing is not None:
            try:
                await showing
            except Exception as exc:  # noqa: BLE001 - recorded all the same (workflow or store): shown then
                log.warning("answer not shown ahead of its record", subject=subject, person_id=person_id, error=str(exc))


async def _tell(client: Client, subject: str, person_id: str, channel: str, wids: set[str], *, actor: str | None,
                note: str | None, ref: str, at: datetime, households: int | None,
                reported_by: str | None) -> Answered:
    ref = ref or f"{channel}:{person_id}:{at.isoformat()}"
    if households is not None and not note:
        note = f"到户 {households}"  # (a late answer recorded through the store keeps the figure)
    ack = Ack(person_id=person_id, channel=channel, at=at, actor=actor or person_id, note=note, ref=ref,
              households=households, reported_by=reported_by)
    result, ended, running = Answered(), set(), set()
    for wid in sorted(wids):
        outcome = await _ask(client, wid, ack)
        if outcome is None or outcome["recorded"] == "none":  # ended, or nothing there waits for it: the store
            ended.add(wid)
            if outcome is not None:
                running.add(wid)
        elif outcome["recorded"] == "taken":
            result.told += 1
        elif outcome["recorded"] == "late":  # recorded late by the workflow itself (an episode that had ended)
            result.late.append({"workflow_id": wid, "late_by_s": outcome.get("late_by_s"), "recorded_by": "workflow"})
    if ended:  # a database fault here is the caller's to hear (503), never an answer reported as taken
        result.ended = len(ended)
        result.late += await _late.submit((LateAnswer(subject=subject, person_id=person_id, channel=channel, at=at,
                                                      actor=actor or person_id, ref=ref, note=note,
                                                      households=households, reported_by=reported_by), ended, running))
    return result
