"""Reading a subject's events from the database, and keeping them between replays (the console's slider)."""
from __future__ import annotations

import json
import threading
from collections import OrderedDict
from datetime import UTC, datetime
from typing import Any

from store.replay.common import Row


def load_events(session: Any, subject: str, until: datetime | None = None, after: int = 0) -> list[Row]:
    """A subject's events in chain order, as plain tuples.

    The columns are read without the ORM's per-row type processing (the replay of a
    50,000-event call-out would spend most of its time there): times and JSON payloads
    are decoded here, for SQLite (text) and PostgreSQL (native types) alike.
    """
    from sqlalchemy import column, table
    from sqlalchemy import select as core_select

    from store.types import UtcDateTime

    audit = table("audit_event", *(column(c) for c in ("seq", "kind", "at", "actor", "channel", "step_id",
                                                      "workflow_id", "payload", "subject", "chain_seq")))
    stmt = core_select(audit.c.seq, audit.c.kind, audit.c.at, audit.c.actor, audit.c.channel, audit.c.step_id,
                       audit.c.workflow_id, audit.c.payload).where(audit.c.subject == subject)
    if after:  # chain positions past `after`
        stmt = stmt.where(audit.c.chain_seq > after)
    if until is not None:  # bound as the column type would bind it (naive UTC on SQLite)
        dialect = session.get_bind().dialect
        stmt = stmt.where(audit.c.at <= UtcDateTime().process_bind_param(until, dialect))
    rows = session.connection().execute(stmt.order_by(audit.c.chain_seq)).all()
    loads, parse_time = json.loads, datetime.fromisoformat
    out = []
    for seq, kind, at, actor, channel, step_id, wid, payload in rows:
        if isinstance(at, str):
            at = parse_time(at)
        at = at.replace(tzinfo=UTC) if at.tzinfo is None else at
        out.append(Row(seq, kind, at, actor, channel, step_id, wid, loads(payload) if isinstance(payload, str) else payload))
    return out


class EventCache:
    """Subjects' events, kept between replays: the console's slider asks for many instants of one call-out.

    The chain is append-only, so a cached list is extended with the events past its end; the
    chain head (length and hash, from `audit_chain`) says whether anything changed. Whether an
    event was altered in place is the chain verification's question, not the replay's.

    Bounded by size, least recently used first out: at most `max_events` events in all (a
    10,000-person call-out has ~48,000, some 50 MB as rows) and `max_subjects` subjects. A
    subject longer than `max_events` alone is replayed from the database and not kept. Until
    the issue-16 review the cache kept 4 subjects whatever their size: a supervisor switching
    between five call-outs read every one again each time, and four large ones held ~200 MB.
    Safe to share between threads (the routes run in a thread pool); the lock is never held
    while the database is read.
    """

    def __init__(self, max_events: int = 250_000, max_subjects: int = 64) -> None:
        self.max_events, self.max_subjects = max_events, max_subjects
        self._data: OrderedDict[str, tuple[int, str, list[Row]]] = OrderedDict()
        self._size = 0
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._data)

    @property
    def size(self) -> int:
        """Events held."""
        return self._size

    def events(self, session: Any, subject: str) -> list[Row]:
        from store.audit import AuditChain

        chain = session.get(AuditChain, subject)
        if chain is None:
            return []
        length, head = chain.length, chain.head_hash
        key = f"{session.get_bind().url}|{subject}"
        with self._lock:
            cached = self._data.get(key)
        if cached is not None and cached[0] == length and cached[1] == head:
            rows = cached[2]
        elif cached is not None and len(cached[2]) == cached[0] < length:
            rows = cached[2] + load_events(session, subject, after=cached[0])
        else:
            rows = load_events(session, subject)
        self._keep(key, (length, head, rows))
        return rows

    def _keep(self, key: str, entry: tuple[int, str, list[Row]]) -> None:
        with self._lock:
            old = self._data.pop(key, None)
            if old is not None:
                self._size -= len(old[2])
            if len(entry[2]) > self.max_events:
                return  # too large to keep: replayed from the database each time
            self._data[key] = entry  # most recently used last
            self._size += len(entry[2])
            while self._data and (self._size > self.max_events or len(self._data) > self.max_subjects):
                _, dropped = self._data.popitem(last=False)
                self._size -= len(dropped[2])

    def clear(self) -> None:
        with self._lock:
            self._data.clear()
            self._size = 0

