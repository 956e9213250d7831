"""Answers and gateway reports reach the workflows that wait for them.

Every path an answer can take (SMS reply, keypress, signed link, IM button, a duty
officer confirming on someone's behalf, a gateway status callback, the
simulator's controls) ends here, so they all behave alike.
"""
from __future__ import annotations

import re
from datetime import UTC, datetime

from sqlmodel import Session, col, select
from temporalio.client import Client
from temporalio.service import RPCError

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


class AnswerError(ValueError):
    """The answer cannot be matched to anything that waits for it (a 4xx, not a 500)."""


async def _signal(client: Client, workflow_id: str, events: ShardEvents) -> bool:
    try:
        await client.get_workflow_handle(workflow_id).signal(CalloutShardWorkflow.events, events)
        return True
    except RPCError:  # the workflow has ended: the answer is still recorded by the caller
        return False


async def acknowledge(client: Client, session: Session, subject: str, person_id: str, channel: str, *,
                      actor: str | None = None, note: str | None = None, ref: str = "",
                      at: datetime | None = None) -> int:
    """Tell every workflow of `subject` that sent to `person_id` that they answered. Returns how many were told."""
    at = at or datetime.now(UTC)
    wids = set(session.exec(select(OutboxMessage.workflow_id).where(
        OutboxMessage.subject == subject, OutboxMessage.person_id == person_id,
        col(OutboxMessage.workflow_id).is_not(None))))
    if not wids:
        raise AnswerError(f"nobody with id {person_id!r} was called in {subject!r}")
    ack = Ack(person_id=person_id, channel=channel, at=at, actor=actor or person_id, note=note, ref=ref)
    told = 0
    for wid in sorted(wids):
        told += await _signal(client, wid, ShardEvents(acks=[ack]))
    return told


def parse_reply(body: str) -> tuple[bool, str | None]:
    """Is an SMS reply an acknowledgement? Returns (ack, code) — the code names the call-out."""
    text = re.sub(r"[\s,。.!!、,]+", "", (body or "").strip().lower())
    code = m.group(0) if (m := re.search(r"\d{4}", text)) else None
    if code:
        text = text.replace(code, "")
    return (text in ACK_WORDS or (code is not None and text in ("", *ACK_WORDS))), code


async def sms_reply(client: Client, session: Session, gateway: str, from_number: str, body: str,
                    provider_id: str | None = None, at: datetime | None = None) -> dict:
    """An SMS from a person's phone: acknowledges the call-out it answers (by code, else the latest)."""
    at = at or datetime.now(UTC)
    if provider_id and session.exec(select(InboundMessage).where(InboundMessage.provider_id == provider_id)).first():
        return {"handled": "duplicate"}
    inbound = InboundMessage(gateway=gateway, channel="sms", from_number=from_number, body=body[:2000],
                             provider_id=provider_id, received_at=at)
    session.add(inbound)
    is_ack, code = parse_reply(body)
    stmt = select(OutboxMessage).where(OutboxMessage.to == from_number, col(OutboxMessage.reply_code).is_not(None))
    if code:
        stmt = stmt.where(OutboxMessage.reply_code == code)
    sent = session.exec(stmt.order_by(col(OutboxMessage.id).desc()).limit(1)).first()
    if sent is None or not is_ack:
        inbound.handled = "unmatched" if sent is None else "not an acknowledgement"
        session.flush()
        return {"handled": inbound.handled}
    inbound.outbox_id = sent.id
    inbound.handled = "ack"
    session.flush()
    told = await acknowledge(client, session, sent.subject or "", sent.person_id or "", "sms",
                             ref=f"sms:{provider_id or inbound.id}", at=at)
    return {"handled": "ack", "subject": sent.subject, "person_id": sent.person_id, "workflows": told}


async def gateway_report(client: Client, session: Session, provider_id: str, status: str, *,
                         answered_by: str | None = None, digits: str | None = None, detail: str | None = None,
                         at: datetime | None = None) -> dict:
    """A gateway's status callback or voice keypress for one sent message."""
    at = at or datetime.now(UTC)
    msg = session.exec(select(OutboxMessage).where(OutboxMessage.provider_id == provider_id)).first()
    if msg is None:
        raise AnswerError(f"no message with provider id {provider_id!r}")
    if answered_by and answered_by.startswith("machine"):
        status = "machine"  # an answering machine is never an acknowledgement
    mapped = STATUS_MAP.get(status.lower())
    if mapped is None:
        raise AnswerError(f"unknown status {status!r}")
    if digits == "1" and mapped != "machine":
        told = await acknowledge(client, session, msg.subject or "", msg.person_id or "", "voice",
                                 ref=f"keypress:{provider_id}", at=at)
        msg.status, msg.updated_at = "answered", at
        return {"handled": "ack", "workflows": told}
    if digits == "2":
        mapped = "declined"
    if mapped in ("sent", "queued", "ringing", "answered", "completed", "delivered") and digits is None:
        msg.status = mapped if mapped in ("delivered", "answered", "completed") else msg.status
        msg.updated_at = at
        if mapped not in ("delivered", "completed"):
            return {"handled": "progress"}
    else:
        msg.status, msg.updated_at, msg.error = mapped, at, detail or msg.error
    if msg.workflow_id:
        await _signal(client, msg.workflow_id, ShardEvents(reports=[Report(send_key=msg.idempotency_key, status=mapped, at=at,
                                                                             detail=detail)]))
    return {"handled": mapped}
