"""The outbox (every message sent) and the simulator's controls (the embedded default gateway)."""
from __future__ import annotations

import asyncio
import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, Field
from sqlmodel import col, select

from api.deps import Anyone, DutyOfficer, Offset, ReadSessionDep, RowId, SettingsDep, TemporalDep, limit_param
from api.security import masked_message
from api.services.answers import AnswerConflict, AnswerError, ambiguous_answers, assign_answer, gateway_report, sms_reply
from store.db import session_scope
from store.messages import OutboxMessage

router = APIRouter(tags=["messages"])


def _item(m: OutboxMessage, settings) -> dict:
    """A message as staff see it: one-time links and login codes masked for every role and gateway
    (whoever reads them could answer or log in as the person; `api.security.masked_message`)."""
    purpose = (m.meta or {}).get("purpose")
    return {"id": m.id, "to": m.to, "channel": m.channel, "body": masked_message(m.body, purpose),
            "idempotency_key": m.idempotency_key, "time": m.created_at.isoformat(), "status": m.status,
            "person_id": m.person_id, "subject": m.subject, "reply_code": m.reply_code,
            "ack_url": masked_message(m.ack_url), "drill": m.drill, "provider_id": m.provider_id,
            "purpose": purpose}


@router.get("/api/outbox", summary="Messages sent, newest first")
def outbox(session: ReadSessionDep, _: Anyone, settings: SettingsDep, subject: str | None = None, person_id: str | None = None,
           channel: str | None = None, to: str | None = None, limit: Annotated[int, limit_param(20000)] = 200,
           offset: Offset = 0) -> list[dict]:
    stmt = select(OutboxMessage)
    for field, value in (("subject", subject), ("person_id", person_id), ("channel", channel), ("to", to)):
        if value is not None:
            stmt = stmt.where(getattr(OutboxMessage, field) == value)
    stmt = stmt.order_by(col(OutboxMessage.id).desc()).offset(max(offset, 0)).limit(max(1, min(limit, 20000)))
    return [_item(m, settings) for m in session.exec(stmt)]


def _message(message_id: int) -> OutboxMessage | None:
    with session_scope(write=False) as s:
        return s.get(OutboxMessage, message_id)


class SimulatedOutcome(BaseModel):
    outcome: Literal["reply", "keypress", "delivered", "failed", "undelivered", "busy", "no_answer", "machine"]
    body: str | None = Field(default=None, max_length=500, description="reply text (outcome=reply), default 收到")
    digits: str | None = Field(default=None, pattern=r"^[0-9*#]{1,4}$", description="keys pressed (outcome=keypress)")


@router.post("/api/simulator/messages/{message_id}", summary="Play a person's answer or a network outcome (simulator)")
async def simulate(message_id: RowId, body: SimulatedOutcome, client: TemporalDep, settings: SettingsDep,
                   _: DutyOfficer) -> dict:
    if settings.gateway != "simulator":
        raise HTTPException(409, detail="the simulator is not the gateway in use")
    msg = await asyncio.to_thread(_message, message_id)
    if msg is None or msg.provider_id is None:
        raise HTTPException(404, detail=f"no sent message {message_id}")
    try:
        if body.outcome == "reply":
            if msg.channel != "sms":
                raise HTTPException(422, detail="outcome: a reply answers an SMS; this message is " + msg.channel)
            return await sms_reply(client, "simulator", msg.to, body.body or "收到",
                                   provider_id=f"SIMIN-{msg.id}-{uuid.uuid4().hex}")
        if body.outcome == "keypress":
            if msg.channel != "voice":
                raise HTTPException(422, detail="outcome: a keypress answers a voice call; this message is " + msg.channel)
            return await gateway_report(client, msg.provider_id, "completed", digits=body.digits or "1")
        if body.outcome == "machine":
            return await gateway_report(client, msg.provider_id, "completed", answered_by="machine_end_beep")
        return await gateway_report(client, msg.provider_id, body.outcome)
    except AnswerError as exc:
        raise HTTPException(404, detail=str(exc)) from exc


# ------------------------------------------------------------------ replies nobody can attribute alone


@router.get("/api/answers/ambiguous", summary="SMS replies from a shared number, held for the duty office to assign")
async def ambiguous(_: DutyOfficer, limit: Annotated[int, limit_param(1000)] = 200) -> list[dict]:
    return await ambiguous_answers(max(1, min(limit, 1000)))


class Assign(BaseModel):
    person_id: str = Field(min_length=1, max_length=100, description="whose answer it is (one of the candidates)")


@router.post("/api/answers/{inbound_id}/assign", summary="Say whose answer a held reply is; it is then recorded as theirs")
async def assign(inbound_id: RowId, body: Assign, client: TemporalDep, caller: DutyOfficer) -> dict:
    try:
        return await assign_answer(client, inbound_id, body.person_id, caller.actor)
    except LookupError as exc:
        raise HTTPException(404, detail=str(exc)) from exc
    except AnswerConflict as exc:
        raise HTTPException(409, detail=str(exc)) from exc
    except AnswerError as exc:
        raise HTTPException(422, detail=str(exc)) from exc
