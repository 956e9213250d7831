"""Messages: the outbox of every send (idempotent by key) and the inbox of replies.

The idempotency key is stored before a gateway is asked to send and the
provider's id after, so a retried activity never sends twice.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Index
from sqlmodel import Field, SQLModel

from store.types import empty_dict, json_column, now_utc, utc_column

OUT_STATES = ("pending", "sent", "delivered", "answered", "failed", "undelivered", "busy", "no_answer", "machine", "opted_out", "canceled")


class OutboxMessage(SQLModel, table=True):
    __tablename__ = "outbox"
    # who waits for this person's answer (every acknowledgement asks): without it SQLite took the
    # subject index and read the whole call-out's outbox for each answer
    __table_args__ = (Index("ix_outbox_subject_person", "subject", "person_id"),)
    id: int | None = Field(default=None, primary_key=True)
    idempotency_key: str = Field(unique=True, index=True)
    gateway: str = "simulator"
    channel: str = Field(index=True, description="sms | voice | im")
    to: str = Field(index=True)
    person_id: str | None = Field(default=None, index=True)
    subject: str | None = Field(default=None, index=True, description="audit subject (call-out id, incident id…)")
    workflow_id: str | None = Field(default=None, index=True, description="the workflow that awaits answers")
    reply_code: str | None = Field(default=None, index=True)
    body: str
    ack_url: str | None = None
    drill: bool = False
    priority: int = 100
    status: str = Field(default="pending", index=True)
    provider_id: str | None = Field(default=None, index=True)
    error: str | None = None
    created_at: datetime = Field(default_factory=now_utc, sa_column=utc_column(nullable=False, index=True))
    sent_at: datetime | None = Field(default=None, sa_column=utc_column())
    updated_at: datetime | None = Field(default=None, sa_column=utc_column())
    meta: dict[str, Any] = Field(default_factory=empty_dict, sa_column=json_column(nullable=False))
    # Fencing (activities/delivery/outbox.py): the activity attempt that owns a row in `sending`, and when it
    # began asking the gateway. A newer attempt takes over rows not yet at the gateway; a stale attempt
    # can neither send nor record a row it no longer owns.
    claim_by: str | None = None
    claim_attempt: int | None = None
    gateway_at: datetime | None = Field(default=None, sa_column=utc_column())


class SendRate(SQLModel, table=True):
    """The account-wide send rate: the next free slot (epoch seconds) of one provider account and channel,
    reserved by every worker process alike (activities/delivery/gate.py)."""

    __tablename__ = "send_rate"
    key: str = Field(primary_key=True)
    next_at: float


class InboundMessage(SQLModel, table=True):
    __tablename__ = "inbox"
    id: int | None = Field(default=None, primary_key=True)
    gateway: str
    channel: str
    from_number: str = Field(index=True)
    body: str
    provider_id: str | None = Field(default=None, unique=True)
    outbox_id: int | None = Field(default=None, foreign_key="outbox.id")
    received_at: datetime = Field(default_factory=now_utc, sa_column=utc_column(nullable=False, index=True))
    handled: str | None = Field(default=None, index=True, description="ack | late | ambiguous | assigned | unmatched | …")
    person_id: str | None = Field(default=None, description="whose answer it is (set when a duty officer assigns it)")
    assigned_by: str | None = None
    assigned_at: datetime | None = Field(default=None, sa_column=utc_column())


class ShortLink(SQLModel, table=True):
    """A short alias of a signed one-time link, for the SMS (store/links.py `shorten`): the code leads to the
    link's path, which checks itself (signature, age, use) as before."""

    __tablename__ = "short_link"
    code: str = Field(primary_key=True)
    target: str = Field(description="the signed link's path: /ack/…, /confirm/… or /spotcheck/…")
    created_at: datetime = Field(default_factory=now_utc, sa_column=utc_column(nullable=False))


class UsedLink(SQLModel, table=True):
    """Acknowledgement links work once: the id of each link used is kept here."""

    __tablename__ = "used_link"
    jti: str = Field(primary_key=True)
    used_at: datetime = Field(default_factory=now_utc, sa_column=utc_column(nullable=False))


class NotOurs(LookupError):
    """A callback's URL names one message and its provider id another."""


def sent_message(s, outbox_id: str | None, provider_id: str) -> OutboxMessage | None:
    """The message a gateway's callback is about: the outbox row its URL names (`?o=`), else the one with its
    provider id. A row whose provider id is not recorded yet (the callback came before the send's result) gets
    it now; a URL naming a row sent with another id raises NotOurs."""
    from sqlmodel import select

    row = None
    if outbox_id and outbox_id.isdigit() and len(outbox_id) <= 15:
        row = s.get(OutboxMessage, int(outbox_id))
        if row is not None and row.provider_id not in (None, provider_id):
            raise NotOurs(outbox_id)
        if row is not None and row.provider_id is None:
            row.provider_id = provider_id
    if row is None:
        row = s.exec(select(OutboxMessage).where(OutboxMessage.provider_id == provider_id)).first()
    return row
