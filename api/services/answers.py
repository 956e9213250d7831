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
from datetime import UTC, datetime

from sqlalchemy import insert
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

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


def _waiting_in(s, subject: str, person_id: str) -> set[str]:
    return set(s.exec(select(OutboxMessage.workflow_id).where(
        OutboxMessage.subject == subject, OutboxMessage.person_id == person_id,
        col(OutboxMessage.workflow_id).is_not(None))))


def _waiting_workflows(subject: str, person_id: str) -> set[str]:
    with session_scope(write=False) as s:
        return _waiting_in(s, subject, person_id)


async def acknowledge(client: Client, subject: str, person_id: str, channel: str, *, actor: str | None = None,
                      note: str | None = None, ref: str = "", at: datetime | None = None,
                      workflows: set[str] | None = None) -> int:
    """Tell every workflow of `subject` that sent to `person_id` that they answered. Returns how many were told.
    (`workflows`: those workflows, when the caller has looked them up already.)"""
    at = at or datetime.now(UTC)
    wids = workflows if workflows is not None else await asyncio.to_thread(_waiting_workflows, subject, person_id)
    if not wids:
        raise AnswerError(f"nobody with id {person_id!r} was called in {subject!r}")
    ack = Ack(person_id=person_id, channel=channel, at=at, actor=actor or person_id, note=note, ref=ref)
    told = 0
    for wid in sorted(wids):
        told += await _signal(client, wid, ShardEvents(acks=[ack]))
    return told


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


def _store_inbound(items: list[tuple]) -> list[tuple[str, str | None, str | None, set[str]]]:
    """Each reply (gateway, from, body, provider id, at) stored once, matched to the latest message that
    asked that number for an answer (by its code when the reply gives one), all in one transaction."""
    with session_scope() as s:
        ids = [i[3] for i in items if i[3]]
        seen = set(s.exec(select(InboundMessage.provider_id).where(col(InboundMessage.provider_id).in_(ids)))) \
            if ids else set()
        out, rows = [], []
        for gateway, from_number, body, provider_id, at in items:
            if provider_id and provider_id in seen:
                out.append(("duplicate", None, None, set()))
                continue
            if provider_id:
                seen.add(provider_id)
            is_ack, code = parse_reply(body)
            stmt = select(OutboxMessage.id, OutboxMessage.subject, OutboxMessage.person_id).where(
                OutboxMessage.to == from_number, col(OutboxMessage.reply_code).is_not(None))
            if code:
                stmt = stmt.where(OutboxMessage.reply_code == code)
            sent = s.exec(stmt.order_by(col(OutboxMessage.id).desc()).limit(1)).first()
            handled = "unmatched" if sent is None else ("ack" if is_ack else "not an acknowledgement")
            rows.append({"gateway": gateway, "channel": "sms", "from_number": from_number, "body": body[:2000],
                         "provider_id": provider_id, "received_at": at, "outbox_id": sent.id if sent else None,
                         "handled": handled})
            waiting = _waiting_in(s, sent.subject, sent.person_id) if handled == "ack" else set()
            out.append((handled, sent.subject if sent else None, sent.person_id if sent else None, waiting))
        if rows:
            s.execute(insert(InboundMessage.__table__), rows)
        return out


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
    if handled != "ack":
        return {"handled": handled}
    if not waiting:
        raise AnswerError(f"nobody with id {person_id!r} was called in {subject!r}")
    told = await acknowledge(client, subject or "", person_id or "", "sms", ref=f"sms:{provider_id or at.isoformat()}",
                             at=at, workflows=waiting)
    return {"handled": "ack", "subject": subject, "person_id": person_id, "workflows": told}


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
        told = await acknowledge(client, subject or "", person_id or "", "voice", ref=f"keypress:{provider_id}", at=at)
        return {"handled": "ack", "workflows": told}
    if channel == "voice" and mapped == "completed" and digits is None:
        mapped = "no_keypress"  # the call ended and nobody confirmed: move on, as after no answer
    if mapped in PROGRESS and mapped not in ("delivered", "completed"):
        return {"handled": "progress"}
    if workflow_id:
        await _signal(client, workflow_id, ShardEvents(reports=[Report(send_key=key, status=mapped, at=at, detail=detail)]))
    return {"handled": mapped}
