"""The outbox rows of a delivery: claimed by one activity attempt (a fencing token), marked before the
gateway is asked, and the gateway's answers recorded only by the attempt that still owns them."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import and_, or_, update
from sqlmodel import col, select
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.gateways import OutgoingMessage, SendResult, gateway_for
from store.bulk import insert_returning, one_of, update_rows
from store.db import session_scope
from store.messages import OutboxMessage

REFUSED = ("failed", "opted_out")
"""The outbox statuses of a send that failed at once (the gateway refused it, or the person opted out);
the statuses a gateway reports later are workflows.escalation.FAILED_STATUSES."""


class Superseded(ApplicationError):
    """A newer attempt of this activity owns the rows: this one stops (Temporal ignores its result anyway)."""

    def __init__(self, detail: str) -> None:
        super().__init__(f"superseded by a newer attempt: {detail}"[:300], type="Superseded")


@dataclass
class Delivery:
    """One message to deliver (rendered by the procedure that wants it sent)."""

    key: str
    channel: str
    to: str
    body: str
    person_id: str | None = None
    subject: str | None = None
    workflow_id: str | None = None
    voice_text: str | None = None
    ack_url: str | None = None
    reply_code: str | None = None
    priority: int = 100
    drill: bool = False
    meta: dict[str, Any] | None = None


@dataclass
class Outcome:
    key: str
    outbox_id: int
    status: str
    provider_id: str | None
    error: str | None
    fresh: bool  # sent by this call (False: found already done by an earlier try)
    accepted_at: datetime | None = None  # when the gateway accepted it (the answer window starts there)


@dataclass(frozen=True)
class Claim:
    """The fencing token of one activity attempt (outside an activity: one try of its own)."""

    by: str
    attempt: int

    @classmethod
    def current(cls) -> "Claim":
        if activity.in_activity():
            info = activity.info()
            return cls(f"{info.workflow_id}/{info.workflow_run_id}/{info.activity_id}", info.attempt)
        return cls("local", 1)


def _message(row: dict, item: "Delivery") -> OutgoingMessage:
    """What goes to the gateway: the outbox row's text when an earlier try claimed it. A retry renders
    the message again, and a new signed link would make it another text: the gateway could not
    find what it already holds (reconcile compares texts) and the person would get it twice."""
    meta = row.get("meta") or item.meta or {}
    return OutgoingMessage(outbox_id=row["id"], idempotency_key=item.key, channel=item.channel, to=item.to,
                           body=row.get("body") or item.body, voice_text=row.get("voice_text") or item.voice_text,
                           ack_url=row.get("ack_url") or item.ack_url, priority=item.priority,
                           created_at=row["created_at"], reply_code=item.reply_code, kind=meta.get("kind"),
                           values=meta.get("vars"))


_FIELDS = ("id", "idempotency_key", "status", "provider_id", "error", "created_at", "body", "ack_url", "meta",
           "claim_by", "claim_attempt", "gateway_at", "sent_at")


def _as_dict(r) -> dict:
    return {"key": r.idempotency_key, "id": r.id, "status": r.status, "provider_id": r.provider_id, "error": r.error,
            "created_at": r.created_at, "claimed": False, "body": r.body, "ack_url": r.ack_url,
            "voice_text": (r.meta or {}).get("voice_text"), "meta": r.meta, "claim_by": r.claim_by, "claim_attempt": r.claim_attempt,
            "gateway_at": r.gateway_at, "sent_at": r.sent_at}


def _row(outbox_id: int) -> dict:
    with session_scope(write=False) as s:
        r = s.exec(select(*(getattr(OutboxMessage, f) for f in _FIELDS)).where(OutboxMessage.id == outbox_id)).one()
        return _as_dict(r)


def _claim(items: list[Delivery], claim: Claim | None = None) -> dict[str, dict]:
    """Insert missing rows claimed by this attempt and mark them `sending`, in one transaction (one
    multi-row INSERT); take over the rows an earlier attempt claimed and never took to the gateway."""
    claim = claim or Claim.current()
    keys = [i.key for i in items]
    table = OutboxMessage.__table__
    with session_scope() as s:
        found = s.exec(select(*(getattr(OutboxMessage, f) for f in _FIELDS)).where(
            one_of(s, col(OutboxMessage.idempotency_key), keys))).all()
        out = {r.idempotency_key: _as_dict(r) for r in found}
        newer = [r for r in out.values() if r["status"] == "sending" and r["claim_by"] == claim.by
                 and (r["claim_attempt"] or 0) > claim.attempt]
        if newer:
            raise Superseded(f"attempt {newer[0]['claim_attempt']} claimed the messages")
        ours = [r["id"] for r in out.values() if r["status"] == "sending" and r["claim_by"] is not None
                and r["gateway_at"] is None]
        if ours:
            taken = set(s.execute(update(table).where(
                one_of(s, table.c.id, ours), table.c.status == "sending", table.c.gateway_at.is_(None),
                or_(table.c.claim_by != claim.by, table.c.claim_attempt <= claim.attempt))
                .values(claim_by=claim.by, claim_attempt=claim.attempt).returning(table.c.id)).scalars())
            for r in out.values():
                if r["id"] in taken:
                    r["claimed"], r["claim_by"], r["claim_attempt"] = True, claim.by, claim.attempt
        now = datetime.now(UTC)
        new = []
        for i in items:
            if i.key in out:
                continue
            meta = {**(i.meta or {}), **({"voice_text": i.voice_text} if i.voice_text else {})}
            new.append({"idempotency_key": i.key, "gateway": gateway_for(i.channel).name, "channel": i.channel,
                        "to": i.to, "person_id": i.person_id, "subject": i.subject, "workflow_id": i.workflow_id,
                        "reply_code": i.reply_code, "body": i.body, "ack_url": i.ack_url, "drill": i.drill,
                        "priority": i.priority, "status": "sending", "provider_id": None, "error": None,
                        "created_at": now, "sent_at": None, "updated_at": None, "meta": meta,
                        "claim_by": claim.by, "claim_attempt": claim.attempt, "gateway_at": None})
            out[i.key] = {"key": i.key, "id": None, "status": "sending", "provider_id": None, "error": None,
                          "created_at": now, "claimed": True, "claim_by": claim.by, "claim_attempt": claim.attempt,
                          "gateway_at": None, "sent_at": None}
        if new:
            ids = insert_returning(s, table, new, table.c.id)
            for row, id_ in zip(new, ids, strict=True):
                out[row["idempotency_key"]]["id"] = id_
        return out


def _owned(table, claim: Claim):
    return and_(table.c.status == "sending", table.c.claim_by == claim.by, table.c.claim_attempt == claim.attempt)


def _begin_call(outbox_id: int, claim: Claim) -> bool:
    """Mark the row as at the gateway, if this attempt still owns it (the fence before the gateway)."""
    return outbox_id in _begin_calls([outbox_id], claim)


def _begin_calls(outbox_ids: list[int], claim: Claim) -> set[int]:
    """`_begin_call` for several rows in one transaction: the ids this attempt still owns, now marked."""
    table = OutboxMessage.__table__
    with session_scope() as s:
        return set(s.execute(update(table).where(one_of(s, table.c.id, outbox_ids), _owned(table, claim))
                             .values(gateway_at=datetime.now(UTC)).returning(table.c.id)).scalars())


def _take_over(rows: list[dict], claim: Claim, at_gateway: bool = False) -> bool:
    """Claim rows another attempt left (still `sending`, as last seen): all or nothing."""
    table = OutboxMessage.__table__
    with session_scope() as s:
        for r in rows:
            same = and_(table.c.id == r["id"], table.c.status == "sending",
                        table.c.claim_by.is_(None) if r["claim_by"] is None else table.c.claim_by == r["claim_by"],
                        table.c.claim_attempt.is_(None) if r["claim_attempt"] is None
                        else table.c.claim_attempt == r["claim_attempt"])
            if s.execute(update(table).where(same).values(claim_by=claim.by, claim_attempt=claim.attempt)).rowcount != 1:
                s.rollback()
                return False
    return True


def _record_results(results: dict[str, SendResult], claim: Claim | None = None) -> bool:
    """Write the gateway's answers on the rows this attempt owns; False if some belong to another now."""
    return not _record_owned(results, claim)


def _record_owned(results: dict[str, SendResult], claim: Claim | None = None) -> set[str]:
    """`_record_results`, returning the keys whose rows belong to another attempt now (not written)."""
    if not results:
        return set()
    claim = claim or Claim.current()
    theirs: set[str] = set()
    table = OutboxMessage.__table__
    with session_scope() as s:  # (rows locked, then written in one statement: no ORM object per row)
        rows = s.execute(select(table.c.id, table.c.idempotency_key, table.c.claim_by, table.c.claim_attempt,
                                table.c.provider_id, table.c.status, table.c.error, table.c.sent_at)
                         .where(one_of(s, table.c.idempotency_key, results)).with_for_update())
        now = datetime.now(UTC)
        writes = []
        for row in rows:
            res = results[row.idempotency_key]
            if row.claim_by is not None and (row.claim_by, row.claim_attempt) != (claim.by, claim.attempt):
                theirs.add(row.idempotency_key)  # a newer attempt took it over: what it records stands
                continue
            status, error = (res.status, res.error) if row.status == "sending" else (row.status, row.error)
            # (a status callback may have come first: what it said stands)
            sent_at = (res.accepted_at or now) if res.status == "sent" and row.sent_at is None else row.sent_at
            writes.append({"id": row.id, "provider_id": row.provider_id or res.provider_id, "status": status,
                           "error": error, "sent_at": sent_at, "updated_at": now})
        update_rows(s, table, table.c.id, writes)
    return theirs
