"""SMS replies: parsed (`parse_reply`), stored once and matched to the message they answer (by code,
else the latest message to that number; a shared number's reply without a code is held), stored in
groups under a burst (one commit for all that arrived together), then acknowledged."""
from __future__ import annotations

import asyncio
import re
import unicodedata
from datetime import UTC, datetime, timedelta

from sqlalchemy import insert
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from temporalio.client import Client

from store.group import GroupCommit
from api.services.answers import shown
from api.services.answers.acks import RECORDED_TEXT, AnswerError, acknowledge, waiting_in, waiting_many
from store.answers import mark_answered
from store.audit import NewEvent, append
from store.db import session_scope
from store.directory import mask_mobile
from store.messages import InboundMessage, OutboxMessage

ACK_WORDS = {"1", "收到", "确认", "已收到", "好", "好的", "ok", "yes", "y", "1收到", "收到1"}


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


RELAY_REPLY = re.compile(r"(?:已经?|已)?(?:通知)?到户[\s,:;]*(\d{1,6})\s*户?(?:[\s,;]+(\d{4}))?[\s.!。]*")
"""到户: "到户 35", "到户35", "已到户 35户", "已到户35户。", optionally the code after ("到户 35 4321")."""


def parse_relay(body: str) -> tuple[int | None, str | None]:
    """A relay confirmation 到户 (workflows/relay.py)? Returns (households, code): households None when it is not
    one. The number right after 到户 is the households, never the call-out's code (a code comes after it)."""
    text = unicodedata.normalize("NFKC", body or "").strip()  # full-width digits and punctuation as ASCII
    m = RELAY_REPLY.fullmatch(text)
    return (int(m.group(1)), m.group(2)) if m else (None, None)


Inbound = tuple[str, str | None, str | None, set[str]]
"""What became of a reply in the match: (handled, subject, person_id, the workflows waiting)."""


def _record_inbound(gateway: str, from_number: str, body: str, provider_id: str | None, at: datetime) -> Inbound:
    """Store the inbound SMS and find the message it answers and the workflows waiting for the answer,
    in one transaction."""
    try:
        return _store_inbound([(gateway, from_number, body, provider_id, at)])[0]
    except IntegrityError:  # the same inbound message delivered twice at once
        return "duplicate", None, None, set()


def _record_inbound_many(items: list[tuple]) -> list[Inbound]:
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


def _sent_to(s, numbers: set[str]) -> dict[str, list]:
    """The messages with a reply code sent to each number, newest first: one query for a batch of replies."""
    out: dict[str, list] = {n: [] for n in numbers}
    for r in s.exec(select(OutboxMessage.id, OutboxMessage.subject, OutboxMessage.person_id, OutboxMessage.created_at,
                           OutboxMessage.to, OutboxMessage.reply_code)
                    .where(col(OutboxMessage.to).in_(sorted(numbers)), col(OutboxMessage.reply_code).is_not(None))
                    .order_by(col(OutboxMessage.id).desc())):
        out[r.to].append(r)
    return out


def _match_in(s, sent: list, from_number: str, code: str | None) -> tuple[str, object | None]:
    """`_match` over the number's messages read already (`_sent_to`); a shared number asks the database."""
    if code:
        rows = [r for r in sent if r.reply_code == code]
        if not rows:
            return "unmatched", None
        return ("matched" if len({(r.subject, r.person_id) for r in rows}) == 1 else "ambiguous"), rows[0]
    if not sent:
        return "unmatched", None
    latest = sent[0]
    if len({r.person_id for r in sent if r.created_at >= latest.created_at - OUTSTANDING_WINDOW}) <= 1:
        return "matched", latest
    return _match(s, from_number, code)


def _store_inbound(items: list[tuple]) -> list[Inbound]:
    out, marked = _stored_and_matched(items)
    shown.tell(marked)  # committed: this process's live boards send them now
    return out


def _stored_and_matched(items: list[tuple]) -> tuple[list[Inbound], list[tuple[str, int]]]:
    """Each reply (gateway, from, body, provider id, at) stored once and matched to the message it answers
    (see `_match`), all in one transaction, with one query for the messages sent to all their numbers and one
    for the workflows waiting for their persons, and shown on its call-out's board (store/answers.py
    `mark_answered`, which waits for no shard's flush). An ambiguous reply is held for the duty office to assign."""
    with session_scope() as s:
        sent_to = _sent_to(s, {i[1] for i in items})
        ids = [i[3] for i in items if i[3]]
        stored = {r.provider_id: r for r in s.exec(select(InboundMessage.provider_id, InboundMessage.handled,
                                                          InboundMessage.outbox_id)
                                                   .where(col(InboundMessage.provider_id).in_(ids)))} if ids else {}
        seen = set(stored)
        out, rows, answered, held = [], [], [], []
        for gateway, from_number, body, provider_id, at in items:
            if provider_id and provider_id in seen:
                prev = stored.get(provider_id)
                if prev is not None and prev.handled == "ack" and prev.outbox_id is not None:
                    # delivered again (the first try may have failed after storing it, e.g. Temporal down):
                    # answer again; answers are idempotent by the message's id, so nothing counts twice
                    m = s.get(OutboxMessage, prev.outbox_id)
                    out.append(("duplicate", m.subject, m.person_id, waiting_in(s, m.subject, m.person_id)))
                else:
                    out.append(("duplicate", None, None, set()))
                continue
            if provider_id:
                seen.add(provider_id)
            households, code = parse_relay(body)  # a relay confirmation answers the message it follows
            is_ack = households is not None
            if not is_ack:
                is_ack, code = parse_reply(body)
            how, sent = _match_in(s, sent_to[from_number], from_number, code)
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
                held.append((row, sent))
            else:
                rows.append(row)
            if handled == "ack" and households is None:  # (a relay's 到户 is the relay's row, not the target's)
                answered.append((sent.subject, sent.person_id, at))
            out.append((handled, sent.subject if sent and handled == "ack" else None,
                        sent.person_id if handled == "ack" else None, set()))
        if rows:
            s.execute(insert(InboundMessage.__table__), rows)
        waiting = waiting_many(s, {(o[1], o[2]) for o in out if o[0] == "ack"})
        marked = mark_answered(s, answered)  # on the call-out's board now, before its workflow has recorded it
        for row, sent in held:
            _hold(s, row, sent)
        return [(h, subj, pid, waiting[(subj, pid)] if h == "ack" else w) for h, subj, pid, w in out], marked


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


_inbound = GroupCommit(_record_inbound_many)  # one commit for the replies that arrive together


async def sms_reply(client: Client, gateway: str, from_number: str, body: str, provider_id: str | None = None,
                    at: datetime | None = None) -> dict:
    """An SMS from a person's phone: acknowledges the call-out it answers (by code, else the latest)."""
    at = at or datetime.now(UTC)
    handled, subject, person_id, waiting = await _inbound.submit((gateway, from_number, body, provider_id, at))
    if handled == "ambiguous":
        return {"handled": "ambiguous", "recorded": "held", "message": HELD_TEXT}
    if handled == "duplicate" and waiting:  # stored before, perhaps not answered (a fault after storing it)
        answered = await acknowledge(client, subject or "", person_id or "", "sms",
                                     ref=f"sms:{provider_id or at.isoformat()}", at=at, workflows=waiting,
                                     households=parse_relay(body)[0], shown=True)  # (with its first delivery)
        return {"handled": "duplicate", "subject": subject, "person_id": person_id, **answered.as_dict()}
    households = parse_relay(body)[0]
    actor = None
    if handled == "unmatched" and households is not None:  # a grid worker 网格员 answering for their village
        found = await asyncio.to_thread(_grid_relay, from_number, provider_id, at)
        if found is not None:
            handled, (subject, person_id, actor, waiting) = "ack", found
    if handled != "ack":
        return {"handled": handled}
    if not waiting:
        raise AnswerError(f"nobody with id {person_id!r} was called in {subject!r}")
    answered = await acknowledge(client, subject or "", person_id or "", "sms", actor=actor,
                                 ref=f"sms:{provider_id or at.isoformat()}", at=at, workflows=waiting,
                                 households=households, shown=True)  # (in the match's transaction)
    out = {"handled": "ack", "subject": subject, "person_id": person_id, **answered.as_dict(),
           "message": RECORDED_TEXT[answered.recorded]}
    if households is not None:
        out.update(households=households, message=RELAY_TEXT[answered.recorded].format(n=households))
    return out


RELAY_TEXT = {"taken": "已记录:到户{n}户", "late": "已记录(逾时):到户{n}户", "repeat": "此前已回复,已有记录"}
GRID_WORKER = "grid_worker"


def _grid_relay(from_number: str, provider_id: str | None,
                at: datetime) -> tuple[str, str, str, set[str]] | None:
    """A 到户 reply from a number nobody sent to: a grid worker's (网格员, a post under the village) answers the
    newest relay asked of their village (within OUTSTANDING_WINDOW), on the village person's behalf. (subject, person, grid worker,
    workflows), or None; the stored reply says whom it answered."""
    from store.callouts import CalloutRelay
    from store.directory import Person, Post

    with session_scope() as s:
        grid = s.exec(select(Person.id, Post.org_unit_id).join(Post, Post.person_id == Person.id).where(
            Person.mobile == from_number, Post.position_code == GRID_WORKER)).all()
        if not grid:
            return None
        relay = s.exec(select(CalloutRelay).where(col(CalloutRelay.org_unit_id).in_([u for _, u in grid]),
                                                  col(CalloutRelay.requested_at) >= at - OUTSTANDING_WINDOW)
                       .order_by(col(CalloutRelay.requested_at).desc())).first()
        if relay is None:
            return None
        worker = next(p for p, u in grid if u == relay.org_unit_id)
        row = s.exec(select(InboundMessage).where(InboundMessage.from_number == from_number,
                                                  InboundMessage.received_at == at)
                     .where(InboundMessage.provider_id == provider_id if provider_id else
                            col(InboundMessage.provider_id).is_(None))).first()
        if row is not None:
            row.handled, row.person_id = "ack", relay.person_id
        return relay.callout_id, relay.person_id, worker, waiting_in(s, relay.callout_id, relay.person_id)


HELD_TEXT = "已收到,此号码由多人共用,值班员核实后记录 / Received: this number is shared, the duty office will assign it"
