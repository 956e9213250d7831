"""The audit chain: append-only, tamper-evident, one hash chain per subject, and one per shard.

Every event carries the hash of the previous event of its chain. A subject (a warning,
an incident, an activation, a review…) has its own chain, so appends for different
subjects never wait for each other. The shards of a call-out (or of a directory
freshness round) write under the call-out's subject, but each into a chain of its own,
keyed by the shard's workflow id `<subject>/shard-<n>` (`chain_of`): twenty shards of a
10,000-person call-out would otherwise all queue on the one head row (issue 25). When the
call-out finishes, its own chain records each shard chain's head (`seal_shards`, kind
`audit.chain.sealed`), so the call-out's chain vouches for its shards' chains.

A shard records the answers it is given in a second chain of its own, its answers lane
(`<subject>/shard-<n>/answers`, `LANES`): an answer is written at once, while a batch of the
shard's sends may be writing 500 events under the shard chain's head, and on PostgreSQL
the answers waited seconds for that row at a 50,000-reply burst (issue 25). The lane is
sealed with the shard chains; the events of a shard are in `seq` order across its chains.

``audit_chain`` keeps each chain's length and head, and anchor events (subject
``_anchors``) periodically record every changed head, so that deleting a whole chain,
or the tail of one, is detected as well as any edited, deleted or reordered event.
Readers select a subject's events by `subject` (all its chains) in `seq` order; within
one chain that is chain order.

Event ids derive from workflow id + step id: an activity retried by Temporal
appends nothing twice.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Index, UniqueConstraint
from sqlalchemy.exc import IntegrityError
from sqlmodel import Field, Session, SQLModel, col, select

from store.bulk import insert_returning, one_of
from store.types import empty_dict, json_column, non_finite, now_utc, utc_column
from workflows.kit import events as kinds  # pure: the registry of event kinds
from workflows.kit.shards import is_shard_of

ANCHOR_SUBJECT = "_anchors"
GENESIS = "0" * 64


class AuditEvent(SQLModel, table=True):
    __tablename__ = "audit_event"
    __table_args__ = (UniqueConstraint("chain", "chain_seq", name="uq_audit_chain_seq"),
                      Index("ix_audit_event_subject_seq", "subject", "seq"),  # a subject's events in order
                      Index("ix_audit_event_chain_start", "chain_seq", "at"))  # subjects begun in a period
    seq: int | None = Field(default=None, primary_key=True)
    event_id: str = Field(unique=True, index=True)
    subject: str = Field(index=True)
    chain: str = Field(description="the chain the event is hashed into: its subject's, or a shard's (`chain_of`)")
    chain_seq: int
    workflow_id: str | None = Field(default=None, index=True)
    run_id: str | None = None
    step_id: str
    kind: str = Field(index=True)
    actor: str = "system"
    channel: str | None = None
    at: datetime = Field(sa_column=utc_column(nullable=False, index=True))
    payload: dict[str, Any] = Field(default_factory=empty_dict, sa_column=json_column(nullable=False))
    prev_hash: str
    hash: str


class AuditChain(SQLModel, table=True):
    """One chain's length and head: a subject's own chain (`chain` == `subject`) or one of its shards'."""

    __tablename__ = "audit_chain"
    chain: str = Field(primary_key=True)
    subject: str = Field(index=True)
    length: int = 0
    head_hash: str = GENESIS
    updated_at: datetime = Field(default_factory=now_utc, sa_column=utc_column(nullable=False))
    anchored_length: int = 0


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """An event as `append` stored it (the same fields as AuditEvent, without an ORM object's cost)."""

    seq: int
    event_id: str
    subject: str
    chain: str
    chain_seq: int
    workflow_id: str | None
    run_id: str | None
    step_id: str
    kind: str
    actor: str
    channel: str | None
    at: datetime
    payload: dict[str, Any]
    prev_hash: str
    hash: str


@dataclass
class NewEvent:
    subject: str
    kind: str
    step_id: str
    workflow_id: str | None = None
    run_id: str | None = None
    actor: str = "system"
    channel: str | None = None
    at: datetime | None = None
    payload: dict[str, Any] = field(default_factory=empty_dict)
    lane: str | None = None  # a shard's event in one of its `LANES` rather than its own chain

    @property
    def event_id(self) -> str:
        return event_id_for(self.workflow_id, self.step_id, self.subject)

    @property
    def chain(self) -> str:
        return chain_of(self.subject, self.workflow_id, self.lane)


def event_id_for(workflow_id: str | None, step_id: str, subject: str) -> str:
    return f"{workflow_id or subject}/{step_id}"


ANSWERS = "answers"
LANES = (ANSWERS,)
"""The chains a shard keeps besides its own, each `<shard's workflow id>/<lane>`: its answers."""


def chain_of(subject: str, workflow_id: str | None, lane: str | None = None) -> str:
    """The chain an event goes into: a shard's own when a shard of the subject wrote it (its workflow id is
    `<subject>/shard-<n>`: workflows/kit/shards.py), or that shard's `lane`; else the subject's."""
    if not is_shard_of(subject, workflow_id):
        return subject
    if lane is None:
        return workflow_id  # type: ignore[return-value]
    if lane not in LANES:
        raise ValueError(f"no audit lane {lane!r}: a shard's lanes are {', '.join(LANES)}")
    return f"{workflow_id}/{lane}"


def is_shard_chain(subject: str, chain: str) -> bool:
    """Whether `chain` is one of `subject`'s shard chains or their lanes (what the subject's chain seals)."""
    base, _, lane = chain.rpartition("/")
    return is_shard_of(subject, chain) or (lane in LANES and is_shard_of(subject, base))


def _canonical_time(at: datetime) -> str:
    return at.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


_HASHED = ("event_id", "subject", "chain_seq", "workflow_id", "run_id", "step_id", "kind", "actor", "channel", "at",
           "payload", "prev_hash")


# built once: json.dumps with options builds an encoder on each call. What is written refuses NaN and ±Infinity
# (`NonFinitePayload`); what is hashed and verified takes them, so that a trail SQLite stored with one still verifies.
_AS_GIVEN = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, default=str, allow_nan=False)
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)
_COMPACT = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)


class NonFinitePayload(ValueError):
    """An event's payload holds NaN or ±Infinity: JSON has no such number (PostgreSQL's JSON type refuses the
    document, SQLite would store it and the trails of the two would differ), so `append` refuses the whole batch."""


def _encoded(payload: dict[str, Any], kind: str = "", event_id: str = "") -> tuple[str, dict[str, Any], str]:
    """A payload as stored (its JSON text, keys in the order given: readers show them in that order), as read back
    (plain JSON values: what JSON has no type for, a datetime say, as its text) and as hashed (canonical: keys
    sorted, compact, as `_hash_of` encodes it): two encodings and a decoding, where the plain copy, the hash and the
    stored document took three encodings and a decoding (16 % of a batch's append in a cProfile, issue 25).
    NonFinitePayload, naming the event and where in its payload, for a NaN or ±Infinity."""
    try:
        text = _AS_GIVEN.encode(payload)
    except ValueError as exc:
        found = non_finite(payload)
        if found is None:
            raise
        where, value = found
        raise NonFinitePayload(f"audit event {kind!r} ({event_id}): payload.{where} is {value!r}, not a finite "
                               f"number; JSON has no NaN or Infinity, so nothing of this append was written") from exc
    plain = json.loads(text)
    return text, plain, _CANONICAL.encode(plain)


_BEFORE_PAYLOAD = tuple(n for n in sorted(_HASHED) if n < "payload")
_AFTER_PAYLOAD = tuple(n for n in sorted(_HASHED) if n > "payload")


def _hash_of(fields: dict[str, Any]) -> str:
    """The hash of an event's `_HASHED` fields: SHA-256 of their canonical JSON (keys sorted at every level,
    compact, the time as `_canonical_time`)."""
    return _hash_with(fields, _CANONICAL.encode(fields["payload"]))


def _hash_with(fields: dict[str, Any], payload: str) -> str:
    """`_hash_of`, the payload given as its canonical text (`_encoded` made it already), put in its place in key
    order among the other fields."""
    before = _COMPACT.encode({n: _canonical_time(fields[n]) if n == "at" else fields[n] for n in _BEFORE_PAYLOAD})
    after = _COMPACT.encode({n: fields[n] for n in _AFTER_PAYLOAD})
    return hashlib.sha256(f'{before[:-1]},"payload":{payload},{after[1:]}'.encode()).hexdigest()


def compute_hash(ev: Any) -> str:
    """The hash of an event (an AuditEvent, or anything with the same attributes)."""
    return _hash_of({name: getattr(ev, name) for name in _HASHED})


def _chains_for_update(session: Session, wanted: dict[str, str]) -> dict[str, AuditChain]:
    """The chains `wanted` (key → subject), locked in key order: those that exist in one statement (a shard group's
    answers lock two hundred lanes at once, and one round trip per chain, each waiting its turn for Python's lock
    between the worker's busy threads, was most of their write: issue 25), then those not created yet one by one."""
    keys = sorted(wanted)  # (FOR UPDATE: PostgreSQL; SQLite has none, its write transactions run one at a time)
    found = {c.chain: c for c in session.exec(select(AuditChain).where(one_of(session, col(AuditChain.chain), keys))
                                              .order_by(AuditChain.chain).with_for_update())}
    for key in keys:
        if key not in found:
            found[key] = _chain_for_update(session, key, wanted[key])
    return found


def _chain_for_update(session: Session, key: str, subject: str) -> AuditChain:
    stmt = select(AuditChain).where(AuditChain.chain == key).with_for_update()
    chain = session.exec(stmt).first()
    if chain is None:
        chain = AuditChain(chain=key, subject=subject)
        try:
            with session.begin_nested():
                session.add(chain)
                session.flush()
        except IntegrityError:  # created concurrently
            chain = session.exec(stmt).one()
    return chain


def append(session: Session, events: Iterable[NewEvent]) -> list[StoredEvent]:
    """Append events in order; an event whose id exists already is returned as stored.

    New events go in as one multi-row INSERT (no ORM unit of work per event): a flush of a
    500-person shard writes a thousand events, and this is on the path of every send.

    A kind that workflows/kit/events.py does not register is refused (UnknownEventKind) before anything is
    written: a kind renamed or mistyped at one emitter would otherwise be stored and silently skipped by
    replay and statistics. (Reading accepts any kind: the chain holds events written under older names.)
    So is a payload holding NaN or ±Infinity (NonFinitePayload, naming the kind, the event and the payload path),
    on every database alike.
    """
    events = list(events)
    ids = [e.event_id for e in events]
    # every payload encoded before any chain is locked or created: a NaN refused (NonFinitePayload) writes nothing
    encoded: dict[str, tuple[str, dict[str, Any], str]] = {}
    for new, eid in zip(events, ids, strict=True):
        kinds.check(new.kind)
        if eid not in encoded:
            encoded[eid] = _encoded(new.payload, new.kind, eid)
    keys = [e.chain for e in events]
    # lock the chains first, in key order (`_chains_for_update`: two appends over the same chains cannot deadlock):
    # a concurrent append of the same events waits, then finds them
    chains = _chains_for_update(session, {key: new.subject for key, new in zip(keys, events, strict=True)}) \
        if events else {}
    table = AuditEvent.__table__
    # events already stored (an activity retried) come back as plain rows, not ORM objects: a batch of sends retried
    # re-appends its 1,500 events, and in a profiled run at 100,000 with 79 batches retried, their ORM objects were
    # 8 % of the worker's Python time (issue 25)
    existing: dict[str, StoredEvent] = {
        row["event_id"]: StoredEvent(**row) for row in session.execute(
            select(table).where(one_of(session, table.c.event_id, ids))).mappings()
    } if ids else {}
    # each chain's length and head as the events go on, set on its row once at the end (an ORM attribute set is
    # ~10 µs, and three per event were 16 % of a batch's append in a cProfile)
    heads = {key: (chain.length, chain.head_hash) for key, chain in chains.items()}
    rows: list[dict[str, Any]] = []
    plain: dict[str, dict[str, Any]] = {}  # each new event's payload as JSON values (its row has the text)
    now = now_utc()
    for new, eid, key in zip(events, ids, keys, strict=True):
        if eid in existing or eid in plain:
            continue
        length, head = heads[key]
        text, payload, canonical = encoded[eid]
        row = {"event_id": eid, "subject": new.subject, "chain": key, "chain_seq": length + 1,
               "workflow_id": new.workflow_id, "run_id": new.run_id, "step_id": new.step_id, "kind": new.kind, "actor": new.actor,
               "channel": new.channel, "at": (new.at or now).astimezone(UTC), "payload": text, "prev_hash": head}
        row["hash"] = _hash_with(row, canonical)  # (the chain is not hashed: see verify)
        rows.append(row)
        plain[eid] = payload
        heads[key] = (length + 1, row["hash"])
    for key, (length, head) in heads.items():
        chain = chains[key]
        if length != chain.length:
            chain.length, chain.head_hash, chain.updated_at = length, head, now
    session.flush()  # the chain rows first: the INSERT below goes around the unit of work
    if rows:
        seqs = insert_returning(session, table, rows, table.c.seq, encoded=("payload",))
        for row, seq in zip(rows, seqs, strict=True):
            existing[row["event_id"]] = StoredEvent(seq=seq, **{**row, "payload": plain[row["event_id"]]})
    return [existing[eid] for eid in ids]


def write_anchor(session: Session, at: datetime | None = None) -> StoredEvent | None:
    """Record the heads of every chain that grew since the last anchor."""
    changed = session.exec(
        select(AuditChain).where(AuditChain.chain != ANCHOR_SUBJECT, AuditChain.length > AuditChain.anchored_length)
    ).all()
    if not changed:
        return None
    heads = {c.chain: [c.length, c.head_hash] for c in changed}  # every chain, the shards' too
    anchors = _chain_for_update(session, ANCHOR_SUBJECT, ANCHOR_SUBJECT)
    [ev] = append(session, [NewEvent(subject=ANCHOR_SUBJECT, kind=kinds.Audit.ANCHOR, step_id=f"anchor-{anchors.length + 1}",
                                      at=at, payload={"heads": heads})])
    for c in changed:
        c.anchored_length = c.length
    return ev


def seal_shards(session: Session, subject: str, workflow_id: str | None = None, run_id: str | None = None,
                at: datetime | None = None) -> list[NewEvent]:
    """Events for the subject's own chain recording the head (length and hash) of each of its shard chains and their
    lanes: appended when the call-out (or freshness round) finishes, after its shards, they make the subject's chain
    vouch for every shard chain (`verify` checks each sealed head is still in place). `workflow_id` is the
    subject's own workflow (not a shard's); one seal per chain, so a retried activity seals nothing twice."""
    rows = session.exec(select(AuditChain).where(AuditChain.subject == subject, AuditChain.chain != subject)
                        .order_by(AuditChain.chain)).all()
    assert chain_of(subject, workflow_id) == subject, "a seal goes into the subject's own chain"
    return [NewEvent(subject=subject, kind=kinds.Audit.CHAIN_SEALED, step_id=f"sealed/{c.chain[len(subject) + 1:]}",
                     workflow_id=workflow_id, run_id=run_id, at=at,
                     payload={"chain": c.chain, "length": c.length, "head": c.head_hash}) for c in rows]


def subject_heads(session: Session, subject: str) -> dict[str, tuple[int, str]]:
    """Each chain of a subject (its own and its shards'): chain -> (length, head hash); empty if it has none."""
    return {c: (n, h) for c, n, h in session.exec(
        select(AuditChain.chain, AuditChain.length, AuditChain.head_hash).where(AuditChain.subject == subject))}


def list_events(session: Session, subject: str | None = None, kind: str | None = None, actor: str | None = None,
                since: datetime | None = None, until: datetime | None = None, after_seq: int = 0,
                limit: int | None = None) -> list[AuditEvent]:
    stmt = select(AuditEvent).where(AuditEvent.seq > after_seq)
    if subject:
        stmt = stmt.where(AuditEvent.subject == subject)
    if kind:
        stmt = stmt.where(col(AuditEvent.kind).startswith(kind))
    if actor:
        stmt = stmt.where(AuditEvent.actor == actor)
    if since:
        stmt = stmt.where(AuditEvent.at >= since)
    if until:
        stmt = stmt.where(AuditEvent.at <= until)
    stmt = stmt.order_by(AuditEvent.seq)
    if limit:
        stmt = stmt.limit(limit)
    return list(session.exec(stmt))


# ------------------------------------------------------------------ verify


@dataclass
class VerifyResult:
    ok: bool
    events: int
    subjects: int
    first_bad_seq: int | None = None
    subject: str | None = None
    reason: str | None = None
    chains: int = 0
    chain: str | None = None  # the chain at fault (a shard's, or the subject's own)

    def as_dict(self) -> dict[str, Any]:
        return self.__dict__.copy()


def _iter_events(session: Session, subject: str | None, batch: int = 5000) -> Iterator[AuditEvent]:
    last = 0
    while True:
        rows = list_events(session, subject=subject, after_seq=last, limit=batch)
        if not rows:
            return
        yield from rows
        last = rows[-1].seq


def verify(session: Session, subject: str | None = None) -> VerifyResult:
    """Check every chain (or one subject's: its own and its shards'); report the first bad sequence number.

    Per chain: positions 1, 2, 3… each linked to the one before and hashed as stored. Then each chain's head
    against `audit_chain` (a deleted tail), each shard head its subject's chain sealed (`seal_shards`) and, over
    everything, each head the anchors recorded (a chain deleted entirely, rows of `audit_chain` with it). An
    event's `chain` column is not hashed: moving an event to another chain breaks both chains' links."""
    heads: dict[str, tuple[int, str, int]] = {}  # chain -> (chain_seq, hash, seq)
    owner: dict[str, str] = {}  # chain -> subject
    count = 0
    anchored: dict[str, tuple[int, str]] = {}
    sealed: dict[str, tuple[int, str, str]] = {}  # shard chain -> (length, head, the subject whose chain sealed it)
    by_position: dict[tuple[str, int], str] = {}
    bad: VerifyResult | None = None

    def fail(seq: int | None, subj: str, chain: str, reason: str) -> VerifyResult:
        return VerifyResult(False, count, len(set(owner.values())), seq, subj, reason, len(heads), chain)

    for ev in _iter_events(session, subject):
        count += 1
        key = ev.chain
        owner.setdefault(key, ev.subject)
        last_chain_seq, last_hash, _ = heads.get(key, (0, GENESIS, 0))
        if bad is None:
            if ev.chain_seq != last_chain_seq + 1:
                bad = fail(ev.seq, ev.subject, key, f"chain position {ev.chain_seq} follows {last_chain_seq}: an event was deleted or reordered")
            elif ev.prev_hash != last_hash:
                bad = fail(ev.seq, ev.subject, key, "previous-hash link broken: an earlier event was edited, deleted or reordered")
            elif compute_hash(ev) != ev.hash:
                bad = fail(ev.seq, ev.subject, key, "hash does not match the event's content: the event was edited")
        heads[key] = (ev.chain_seq, ev.hash, ev.seq)
        by_position[(key, ev.chain_seq)] = ev.hash
        if ev.subject == ANCHOR_SUBJECT:
            for subj, (length, head) in (ev.payload.get("heads") or {}).items():
                if length >= anchored.get(subj, (0, ""))[0]:
                    anchored[subj] = (length, head)
        elif ev.kind == kinds.Audit.CHAIN_SEALED and isinstance(ev.payload, dict):
            p = ev.payload
            sealed[str(p.get("chain"))] = (int(p.get("length") or 0), str(p.get("head")), ev.subject)
    if bad:
        return bad
    chains = session.exec(select(AuditChain) if subject is None else select(AuditChain).where(AuditChain.subject == subject)).all()
    for chain in chains:
        got = heads.get(chain.chain, (0, GENESIS, None))
        if got[0] != chain.length or got[1] != chain.head_hash:
            return fail(got[2] + 1 if got[2] else None, chain.subject, chain.chain,
                        f"chain head says {chain.length} events, found {got[0]}: events at the end were deleted or edited")
    for key, (length, head, subj) in sorted(sealed.items()):
        if not is_shard_chain(subj, key):
            return fail(None, subj, key, f"the chain of {subj!r} seals {key!r}, not one of its shards")
        if by_position.get((key, length)) != head:
            found = heads.get(key, (0, GENESIS, 0))[0]
            return fail(None, subj, key, f"shard chain {key!r} was sealed by {subj!r} at {length} events; "
                                         f"{'its head there no longer matches' if found >= length else f'found {found}'}")
    if subject is None:
        known = {c.chain for c in chains}
        for key, (length, head) in sorted(anchored.items()):
            if key not in known and key not in heads:
                return fail(None, key, key, f"anchored chain {key!r} ({length} events) is missing entirely")
            if by_position.get((key, length)) != head:
                return fail(None, key, key, f"anchored head of {key!r} at position {length} no longer matches")
    return VerifyResult(True, count, len(set(owner.values())), chains=len(heads))
