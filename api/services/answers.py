"""Answers and gateway reports reach the workflows that wait for them.

Every path an answer can take (SMS reply, keypress, signed link, IM button, a duty
officer confirming on someone's behalf, a gateway status callback, the
simulator's controls) ends here, so they all behave alike.

Database work runs in short transactions on a worker thread, never across an await
of Temporal: a write transaction held while the event loop waits would stall every
other request on SQLite.
"""
from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import insert
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, func, select
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.service import RPCError, RPCStatusCode

from store.answers import LateAnswer, record_late
from store.audit import NewEvent, append
from store.directory import mask_mobile
from store.db import session_scope
from store.messages import InboundMessage, OutboxMessage
from workflows.callout import CalloutShardWorkflow, ShardEvents
from workflows.escalation import Ack, Report

ACK_WORDS = {"1", "收到", "确认", "已收到", "好", "好的", "ok", "yes", "y", "1收到", "收到1"}
STATUS_MAP = {  # gateway status -> report status
    "delivered": "delivered", "sent": "sent", "failed": "failed", "undelivered": "undelivered", "busy": "busy",
    "no-answer": "no_answer", "no_answer": "no_answer", "canceled": "canceled", "machine": "machine",
    "completed": "completed", "answered": "answered", "in-progress": "answered", "ringing": "ringing",
    "queued": "queued", "declined": "declined", "opted_out": "opted_out",
}
PROGRESS = {"sent", "queued", "ringing", "answered", "completed", "delivered"}


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

    async def send(self, client: Client, workflow_id: str, events: ShardEvents) -> bool:
        fut: asyncio.Future = asyncio.get_running_loop().create_future()
        self.pending.setdefault(workflow_id, []).append((events, fut))
        if workflow_id not in self.busy:
            self.busy.add(workflow_id)
            asyncio.create_task(self._drain(client, workflow_id))
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


async def _signal(client: Client, workflow_id: str, events: ShardEvents) -> bool:
    return await _batcher.send(client, workflow_id, events)


SHARD = re.compile(r"/shard-\d+$")
ANSWER_UPDATE_TIMEOUT = 15.0
"""Seconds an answer waits for a procedure's workflow to say what became of it before it is signalled instead."""


async def _ask(client: Client, workflow_id: str, ack: Ack) -> dict | None:
    """Give an answer to a procedure's workflow (reporting, activation, review, …) that says what became of it:
    {"recorded": "taken" | "late" | "repeat" | "none", "late_by_s": …}; None when the workflow has ended. A
    workflow without the `answers` update (a call-out shard, or code from before it) hears the signal and
    takes it, as before."""
    if not SHARD.search(workflow_id):
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
    return {"recorded": "taken"} if await _signal(client, workflow_id, ShardEvents(acks=[ack])) else None


def _waiting_in(s, subject: str, person_id: str) -> set[str]:
    return set(s.exec(select(OutboxMessage.workflow_id).where(
        OutboxMessage.subject == subject, OutboxMessage.person_id == person_id,
        col(OutboxMessage.workflow_id).is_not(None))))


def _waiting_workflows(subject: str, person_id: str) -> set[str]:
    with session_scope(write=False) as s:
        return _waiting_in(s, subject, person_id)


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


async def acknowledge(client: Client, subject: str, person_id: str, channel: str, *, actor: str | None = None,
                      note: str | None = None, ref: str = "", at: datetime | None = None,
                      workflows: set[str] | None = None) -> Answered:
    """Tell every workflow of `subject` that sent to `person_id` that they answered; record the answer as late
    (through the store) for each of those workflows that has ended. Every answer ends on record: nobody
    waiting is not "nothing to do". (`workflows`: those workflows, when the caller has looked them up already.)"""
    at = at or datetime.now(UTC)
    wids = workflows if workflows is not None else await asyncio.to_thread(_waiting_workflows, subject, person_id)
    if not wids:
        raise AnswerError(f"nobody with id {person_id!r} was called in {subject!r}")
    ref = ref or f"{channel}:{person_id}:{at.isoformat()}"
    ack = Ack(person_id=person_id, channel=channel, at=at, actor=actor or person_id, note=note, ref=ref)
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
        result.late += await asyncio.to_thread(
            _record_late, LateAnswer(subject=subject, person_id=person_id, channel=channel, at=at,
                                     actor=actor or person_id, ref=ref, note=note), ended, running)
    return result


def parse_reply(body: str) -> tuple[bool, str | None]:
    """Is an SMS reply an acknowledgement? Returns (ack, code) — the code names the call-out."""
    body = (body or "").strip().lower()
    # the code is a 4-digit number of its own ("1 4321", "收到4321"), found before the spaces go:
    # "1 4321" must not read as code 1432
    code = m.group(1) if (m := re.search(r"(?<!\d)(\d{4})(?!\d)", body)) else None
    if code:
        body = body[:m.start(1)] + " " + body[m.end(1):]
    text = re.sub(r"[\s,。.!!、,]+", "", body)
    return (text in ACK_WORDS or (code is not None and text in ("", *ACK_WORDS))), code


def _record_inbound(gateway: str, from_number: str, body: str, provider_id: str | None,
                    at: datetime) -> tuple[str, str | None, str | None, set[str]]:
    """Store the inbound SMS and find the message it answers and the workflows waiting for the answer,
    in one transaction: (handled, subject, person_id, workflows)."""
    try:
        return _store_inbound([(gateway, from_number, body, provider_id, at)])[0]
    except IntegrityError:  # the same inbound message delivered twice at once
        return "duplicate", None, None, set()


def _record_inbound_many(items: list[tuple]) -> list[tuple[str, str | None, str | None, set[str]]]:
    """`_record_inbound` for many replies in one transaction (one commit for all: see _GroupCommit)."""
    try:
        return _store_inbound(items)
    except IntegrityError:  # another API process stored one of them meanwhile: one at a time, then
        return [_record_inbound(*i) for i in items]


OUTSTANDING_WINDOW = timedelta(days=7)
"""Messages to one number within this time of the latest one are still waiting for an answer (the longest
wait any procedure asks for: a review's summary, 7 days)."""
ANSWERED = ("ack", "late", "assigned")


def _match(s, from_number: str, code: str | None) -> tuple[str, object | None]:
    """The message a reply from `from_number` answers: by its code, else the latest message to that number.
    ("matched", row) or ("ambiguous", row) when the number has outstanding messages for more than one
    person (a shared mobile) and no code tells them apart, or ("unmatched", None)."""
    base = select(OutboxMessage.id, OutboxMessage.subject, OutboxMessage.person_id, OutboxMessage.created_at).where(
        OutboxMessage.to == from_number, col(OutboxMessage.reply_code).is_not(None))
    if code:
        rows = s.exec(base.where(OutboxMessage.reply_code == code).order_by(col(OutboxMessage.id).desc())).all()
        if not rows:
            return "unmatched", None
        return ("matched" if len({(r.subject, r.person_id) for r in rows}) == 1 else "ambiguous"), rows[0]
    latest = s.exec(base.order_by(col(OutboxMessage.id).desc()).limit(1)).first()
    if latest is None:
        return "unmatched", None
    recent = s.exec(base.where(OutboxMessage.created_at >= latest.created_at - OUTSTANDING_WINDOW)).all()
    persons = {r.person_id for r in recent}
    if len(persons) <= 1:
        return "matched", latest
    # a shared number: the persons who answered from it already are not the ones still waiting
    answered = set(s.exec(select(OutboxMessage.subject, OutboxMessage.person_id).join(
        InboundMessage, InboundMessage.outbox_id == OutboxMessage.id).where(
        InboundMessage.from_number == from_number, col(InboundMessage.handled).in_(ANSWERED),
        col(OutboxMessage.id).in_([r.id for r in recent]))).all())
    open_ = [r for r in recent if (r.subject, r.person_id) not in answered]
    if len({r.person_id for r in open_}) == 1:
        return "matched", max(open_, key=lambda r: r.id)
    return "ambiguous", latest


def _store_inbound(items: list[tuple]) -> list[tuple[str, str | None, str | None, set[str]]]:
    """Each reply (gateway, from, body, provider id, at) stored once and matched to the message it answers
    (see `_match`), all in one transaction. An ambiguous reply is held for the duty office to assign."""
    with session_scope() as s:
        ids = [i[3] for i in items if i[3]]
        stored = {r.provider_id: r for r in s.exec(select(InboundMessage.provider_id, InboundMessage.handled,
                                                          InboundMessage.outbox_id)
                                                   .where(col(InboundMessage.provider_id).in_(ids)))} if ids else {}
        seen = set(stored)
        out, rows = [], []
        for gateway, from_number, body, provider_id, at in items:
            if provider_id and provider_id in seen:
                prev = stored.get(provider_id)
                if prev is not None and prev.handled == "ack" and prev.outbox_id is not None:
                    # delivered again (the first try may have failed after storing it, e.g. Temporal down):
                    # answer again; answers are idempotent by the message's id, so nothing counts twice
                    m = s.get(OutboxMessage, prev.outbox_id)
                    out.append(("duplicate", m.subject, m.person_id, _waiting_in(s, m.subject, m.person_id)))
                else:
                    out.append(("duplicate", None, None, set()))
                continue
            if provider_id:
                seen.add(provider_id)
            is_ack, code = parse_reply(body)
            how, sent = _match(s, from_number, code)
            if sent is None:
                handled = "unmatched"
            elif not is_ack:
                handled = "not an acknowledgement"
            else:
                handled = "ack" if how == "matched" else "ambiguous"
            row = {"gateway": gateway, "channel": "sms", "from_number": from_number, "body": body[:2000],
                   "provider_id": provider_id, "received_at": at, "handled": handled,
                   "outbox_id": sent.id if sent and handled != "ambiguous" else None,
                   "person_id": sent.person_id if handled == "ack" else None}
            if handled == "ambiguous":
                _hold(s, row, sent)
            else:
                rows.append(row)
            waiting = _waiting_in(s, sent.subject, sent.person_id) if handled == "ack" else set()
            out.append((handled, sent.subject if sent and handled == "ack" else None,
                        sent.person_id if handled == "ack" else None, waiting))
        if rows:
            s.execute(insert(InboundMessage.__table__), rows)
        return out


def _hold(s, row: dict, latest) -> None:
    """Keep an ambiguous reply for the duty office to assign (GET /api/answers/ambiguous), audited under the
    subject of the latest message to that number."""
    msg = InboundMessage(**row)
    s.add(msg)
    s.flush()
    persons = sorted({r for r in s.exec(select(OutboxMessage.person_id).where(
        OutboxMessage.to == row["from_number"], col(OutboxMessage.reply_code).is_not(None),
        OutboxMessage.created_at >= _at(s, latest.id) - OUTSTANDING_WINDOW)) if r})
    append(s, [NewEvent(subject=latest.subject or "answers", kind="answer.ambiguous", step_id=f"ambiguous/{msg.id}",
                        channel="sms", at=row["received_at"],
                        payload={"inbound_id": msg.id, "from": mask_mobile(row["from_number"]), "candidates": persons,
                                 "note": "共用号码的回复,待值班员指定应答人 / a reply from a shared number, held "
                                         "for the duty office to assign"})])


def _at(s, outbox_id: int) -> datetime:
    return s.exec(select(OutboxMessage.created_at).where(OutboxMessage.id == outbox_id)).one()


class _GroupCommit:
    """Replies that arrive together are stored together: one transaction and one commit for all
    the replies that came in while the previous batch was being written (group commit). Each
    request still answers only after its reply is committed; under a burst the commits stop
    queueing one behind another on SQLite's write lock."""

    def __init__(self) -> None:
        self.pending: list[tuple[tuple, asyncio.Future]] = []
        self.busy = False

    async def submit(self, item: tuple):
        fut: asyncio.Future = asyncio.get_running_loop().create_future()
        self.pending.append((item, fut))
        if not self.busy:
            self.busy = True
            asyncio.create_task(self._drain())
        return await fut

    async def _drain(self) -> None:
        try:
            while self.pending:
                batch, self.pending = self.pending, []
                try:
                    results = await asyncio.to_thread(_record_inbound_many, [i for i, _ in batch])
                except BaseException as exc:  # noqa: BLE001 - handed to every waiting request
                    for _, fut in batch:
                        if not fut.done():
                            fut.set_exception(exc)
                    continue
                for (_, fut), result in zip(batch, results, strict=True):
                    if not fut.done():
                        fut.set_result(result)
        finally:
            self.busy = False


_inbound = _GroupCommit()


async def sms_reply(client: Client, gateway: str, from_number: str, body: str, provider_id: str | None = None,
                    at: datetime | None = None) -> dict:
    """An SMS from a person's phone: acknowledges the call-out it answers (by code, else the latest)."""
    at = at or datetime.now(UTC)
    handled, subject, person_id, waiting = await _inbound.submit((gateway, from_number, body, provider_id, at))
    if handled == "ambiguous":
        return {"handled": "ambiguous", "recorded": "held", "message": HELD_TEXT}
    if handled == "duplicate" and waiting:  # stored before, perhaps not answered (a fault after storing it)
        answered = await acknowledge(client, subject or "", person_id or "", "sms",
                                     ref=f"sms:{provider_id or at.isoformat()}", at=at, workflows=waiting)
        return {"handled": "duplicate", "subject": subject, "person_id": person_id, **answered.as_dict()}
    if handled != "ack":
        return {"handled": handled}
    if not waiting:
        raise AnswerError(f"nobody with id {person_id!r} was called in {subject!r}")
    answered = await acknowledge(client, subject or "", person_id or "", "sms",
                                 ref=f"sms:{provider_id or at.isoformat()}", at=at, workflows=waiting)
    return {"handled": "ack", "subject": subject, "person_id": person_id, **answered.as_dict(),
            "message": RECORDED_TEXT[answered.recorded]}


HELD_TEXT = "已收到,此号码由多人共用,值班员核实后记录 / Received: this number is shared, the duty office will assign it"


def _ambiguous(limit: int) -> list[dict]:
    with session_scope(write=False) as s:
        rows = s.exec(select(InboundMessage).where(InboundMessage.handled == "ambiguous")
                      .order_by(col(InboundMessage.id).desc()).limit(limit)).all()
        out = []
        for r in rows:
            cands = s.exec(select(OutboxMessage.person_id, OutboxMessage.subject, func.max(OutboxMessage.created_at))
                           .where(OutboxMessage.to == r.from_number, col(OutboxMessage.reply_code).is_not(None),
                                  OutboxMessage.created_at >= r.received_at - OUTSTANDING_WINDOW,
                                  OutboxMessage.created_at <= r.received_at)
                           .group_by(OutboxMessage.person_id, OutboxMessage.subject)).all()
            out.append({"id": r.id, "from": mask_mobile(r.from_number), "body": r.body, "received_at": r.received_at,
                        "candidates": [{"person_id": p, "subject": sub, "sent_at": t} for p, sub, t in cands]})
        return out


async def ambiguous_answers(limit: int = 200) -> list[dict]:
    """Replies held because the number is shared and nothing in them says whose answer they are."""
    return await asyncio.to_thread(_ambiguous, limit)


def _claim(inbound_id: int, person_id: str) -> tuple[InboundMessage, OutboxMessage]:
    with session_scope(write=False) as s:
        row = s.get(InboundMessage, inbound_id)
        if row is None:
            raise LookupError(f"no inbound message {inbound_id}")
        if row.handled != "ambiguous":
            raise AnswerConflict(f"inbound message {inbound_id} is not waiting to be assigned ({row.handled})")
        sent = s.exec(select(OutboxMessage).where(
            OutboxMessage.to == row.from_number, OutboxMessage.person_id == person_id,
            col(OutboxMessage.reply_code).is_not(None), OutboxMessage.created_at <= row.received_at)
            .order_by(col(OutboxMessage.id).desc()).limit(1)).first()
        if sent is None:
            raise AnswerError(f"person_id: no message to {person_id!r} was sent to this number before the reply")
        return row, sent


def _assigned(inbound_id: int, sent: OutboxMessage, person_id: str, actor: str, recorded: str) -> None:
    with session_scope() as s:
        row = s.get(InboundMessage, inbound_id)
        row.handled, row.person_id, row.outbox_id = "assigned", person_id, sent.id
        row.assigned_by, row.assigned_at = actor, datetime.now(UTC)
        append(s, [NewEvent(subject=sent.subject or "answers", kind="answer.assigned", step_id=f"assigned/{inbound_id}",
                            actor=actor, channel="sms", at=row.assigned_at,
                            payload={"inbound_id": inbound_id, "person_id": person_id, "outbox_id": sent.id,
                                     "received_at": row.received_at.isoformat(), "recorded": recorded})])


async def assign_answer(client: Client, inbound_id: int, person_id: str, actor: str) -> dict:
    """The duty office says whose answer a held reply is: it is then answered as that person's, at the time it
    arrived (on time or late like any other), and the assignment is audited."""
    row, sent = await asyncio.to_thread(_claim, inbound_id, person_id)
    answered = await acknowledge(client, sent.subject or "", person_id, "sms", note=f"assigned by {actor}",
                                 ref=f"sms:{row.provider_id or row.received_at.isoformat()}", at=row.received_at)
    await asyncio.to_thread(_assigned, inbound_id, sent, person_id, actor, answered.recorded)
    return {"id": inbound_id, "person_id": person_id, "subject": sent.subject, **answered.as_dict()}


def _apply_status(provider_id: str, mapped: str, digits: str | None, detail: str | None,
                  at: datetime) -> tuple[str | None, str | None, str | None, str, str]:
    """Update the outbox row; returns (subject, person_id, workflow_id, send key, channel)."""
    with session_scope() as s:
        msg = s.exec(select(OutboxMessage).where(OutboxMessage.provider_id == provider_id)).first()
        if msg is None:
            raise AnswerError(f"no message with provider id {provider_id!r}")
        if digits == "1" and mapped != "machine":
            msg.status = "answered"
        elif mapped in PROGRESS:
            if mapped in ("delivered", "answered", "completed"):
                msg.status = mapped
        else:
            msg.status, msg.error = mapped, detail or msg.error
        msg.updated_at = at
        return msg.subject, msg.person_id, msg.workflow_id, msg.idempotency_key, msg.channel


async def gateway_report(client: Client, provider_id: str, status: str, *, answered_by: str | None = None,
                         digits: str | None = None, detail: str | None = None, at: datetime | None = None) -> dict:
    """A gateway's status callback or voice keypress for one sent message."""
    at = at or datetime.now(UTC)
    if answered_by and answered_by.lower().startswith(("machine", "fax")):
        status = "machine"  # an answering machine is never an acknowledgement
    mapped = STATUS_MAP.get(status.lower())
    if mapped is None:
        raise AnswerError(f"unknown status {status!r}")
    if digits == "2" and mapped != "machine":
        mapped = "declined"
    subject, person_id, workflow_id, key, channel = await asyncio.to_thread(
        _apply_status, provider_id, mapped, digits, detail, at)
    if digits == "1" and mapped != "machine":
        answered = await acknowledge(client, subject or "", person_id or "", "voice", ref=f"keypress:{provider_id}", at=at)
        return {"handled": "ack", **answered.as_dict()}
    if channel == "voice" and mapped == "completed" and digits is None:
        mapped = "no_keypress"  # the call ended and nobody confirmed: move on, as after no answer
    if mapped in PROGRESS and mapped not in ("delivered", "completed"):
        return {"handled": "progress"}
    if workflow_id:
        await _signal(client, workflow_id, ShardEvents(reports=[Report(send_key=key, status=mapped, at=at, detail=detail)]))
    return {"handled": mapped}
