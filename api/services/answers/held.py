"""Replies held because the number is shared and nothing in them says whose answer they are: listed for
the duty office, which assigns each to a person (then answered as theirs, at the time it arrived)."""
from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from pydantic import Field
from sqlmodel import col, func, select
from temporalio.client import Client

from api.services.answers.acks import AnswerConflict, AnswerError, acknowledge
from api.services.answers.sms import OUTSTANDING_WINDOW
from api.services.shapes import Out
from store.audit import NewEvent, append
from store.db import session_scope
from store.directory import mask_mobile
from store.messages import InboundMessage, OutboxMessage


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
    from api.services.answers.sms import parse_relay

    answered = await acknowledge(client, sent.subject or "", person_id, "sms", note=f"assigned by {actor}",
                                 ref=f"sms:{row.provider_id or row.received_at.isoformat()}", at=row.received_at,
                                 households=parse_relay(row.body)[0])  # a held 到户 reply keeps its figure
    await asyncio.to_thread(_assigned, inbound_id, sent, person_id, actor, answered.recorded)
    return {"id": inbound_id, "person_id": person_id, "subject": sent.subject, **answered.as_dict()}


class Candidate(Out):
    person_id: str | None
    subject: str | None
    sent_at: datetime | str  # as the database gives it (a datetime, passed on as the JSON of one)


class HeldReply(Out):
    """A reply from a shared number, held for the duty office to assign."""

    id: int
    from_: str = Field(alias="from", description="the number, masked")
    body: str
    received_at: datetime | str
    candidates: list[Candidate]
