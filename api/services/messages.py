"""The outbox as staff see it and the simulator's controls (the embedded default gateway): the REST routes
(api/routes/messages.py) and the console call these."""
from __future__ import annotations

import asyncio
import uuid
from typing import Any, Literal

from pydantic import BaseModel, Field
from sqlmodel import Session, col, select
from temporalio.client import Client

from api.security import masked_message
from api.services.answers import AnswerError, gateway_report, sms_reply
from api.services.dates import DateRange
from api.services.errors import ServiceError
from api.services.shapes import Out, Timestamp
from config import Settings
from store.db import session_scope
from store.messages import OutboxMessage


class SimulatorError(ServiceError):
    """The simulator refused to play an outcome."""


def outbox_item(m: OutboxMessage) -> dict[str, Any]:
    """A message as staff see it: one-time links and login codes masked for every role and gateway
    (whoever reads them could answer or log in as the person; `api.security.masked_message`)."""
    purpose = (m.meta or {}).get("purpose")
    return {"id": m.id, "to": m.to, "channel": m.channel, "body": masked_message(m.body, purpose),
            "idempotency_key": m.idempotency_key, "time": m.created_at.isoformat(), "status": m.status,
            "person_id": m.person_id, "subject": m.subject, "reply_code": m.reply_code,
            "ack_url": masked_message(m.ack_url), "drill": m.drill, "provider_id": m.provider_id,
            "purpose": purpose}


def outbox(session: Session, *, subject: str | None = None, person_id: str | None = None, channel: str | None = None,
           to: str | None = None, limit: int = 200, offset: int = 0, dates: DateRange | None = None) -> list[dict[str, Any]]:
    """Messages sent, newest first, filtered by any of subject, person, channel, number and local days (`dates`)."""
    stmt = select(OutboxMessage) if dates is None else dates.where(select(OutboxMessage), col(OutboxMessage.created_at))
    for field, value in (("subject", subject), ("person_id", person_id), ("channel", channel), ("to", to)):
        if value is not None:
            stmt = stmt.where(getattr(OutboxMessage, field) == value)
    stmt = stmt.order_by(col(OutboxMessage.id).desc()).offset(max(offset, 0)).limit(max(1, min(limit, 20000)))
    return [outbox_item(m) for m in session.exec(stmt)]


def _message(message_id: int) -> OutboxMessage | None:
    with session_scope(write=False) as s:
        return s.get(OutboxMessage, message_id)


class SimulatedOutcome(BaseModel):
    outcome: Literal["reply", "keypress", "delivered", "failed", "undelivered", "busy", "no_answer", "machine"]
    body: str | None = Field(default=None, max_length=500, description="reply text (outcome=reply), default 收到")
    digits: str | None = Field(default=None, pattern=r"^[0-9*#]{1,4}$", description="keys pressed (outcome=keypress)")


async def simulate(client: Client, settings: Settings, message_id: int, played: SimulatedOutcome) -> dict[str, Any]:
    """Play a person's answer or a network outcome for a message the simulator sent: the same code path as
    the gateway's webhooks. Raises SimulatorError 409 (the simulator is not the gateway), 404 (no such sent
    message; nobody waits for the answer), 422 (a reply to a call, a keypress on an SMS)."""
    if settings.gateway != "simulator":
        raise SimulatorError(409, "the simulator is not the gateway in use")
    msg = await asyncio.to_thread(_message, message_id)
    if msg is None or msg.provider_id is None:
        raise SimulatorError(404, f"no sent message {message_id}")
    if msg.gateway != "simulator":  # a channel of its own provider (GATEWAY_SMS/_VOICE): its answers are real
        raise SimulatorError(409, f"message {message_id} went through {msg.gateway}, not the simulator")
    try:
        if played.outcome == "reply":
            if msg.channel != "sms":
                raise SimulatorError(422, "outcome: a reply answers an SMS; this message is " + msg.channel)
            return await sms_reply(client, "simulator", msg.to, played.body or "收到",
                                   provider_id=f"SIMIN-{msg.id}-{uuid.uuid4().hex}")
        if played.outcome == "keypress":
            if msg.channel != "voice":
                raise SimulatorError(422, "outcome: a keypress answers a voice call; this message is " + msg.channel)
            return await gateway_report(client, msg.provider_id, "completed", digits=played.digits or "1")
        if played.outcome == "machine":
            return await gateway_report(client, msg.provider_id, "completed", answered_by="machine_end_beep")
        return await gateway_report(client, msg.provider_id, played.outcome)
    except AnswerError as exc:
        raise SimulatorError(404, str(exc)) from exc


class OutboxItem(Out):
    """A message as staff see it (one-time links and login codes masked)."""

    id: int
    to: str
    channel: str = Field(description="sms | voice | im")
    body: str
    idempotency_key: str
    time: Timestamp
    status: str
    person_id: str | None
    subject: str | None
    reply_code: str | None
    ack_url: str | None
    drill: bool
    provider_id: str | None
    purpose: str | None
