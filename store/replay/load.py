"""Reading a subject's events from the database, and keeping them between replays (the console's slider)."""
from __future__ import annotations

import json
import threading
from collections import OrderedDict
from datetime import UTC, datetime
from typing import Any

from store.replay.common import Row


def load_events(session: Any, subject: str, until: datetime | None = None,
                after: dict[str, int] | None = None) -> list[Row]:
    """A subject's events in order (`seq`: within each of its chains, chain order), as plain tuples.

    `after` (chain -> length): only the events past those positions, and every event of a chain not named.
    The columns are read without the ORM's per-row type processing (the replay of a
    50,000-event call-out would spend most of its time there): times and JSON payloads
    are decoded here, for SQLite (text) and PostgreSQL (native types) alike.
    """
    from sqlalchemy import and_, column, or_, table
    from sqlalchemy import select as core_select

    from store.types import UtcDateTime

    audit = table("audit_event", *(column(c) for c in ("seq", "kind", "at", "actor", "channel", "step_id",
                                                      "workflow_id", "payload", "subject", "chain", "chain_seq")))
    stmt = core_select(audit.c.seq, audit.c.kind, audit.c.at, audit.c.actor, audit.c.channel, audit.c.step_id,
                       audit.c.workflow_id, audit.c.payload).where(audit.c.subject == subject)
    if after:  # each chain's positions past its length; chains not named, whole
        stmt = stmt.where(or_(*(and_(audit.c.chain == c, audit.c.chain_seq > n) for c, n in after.items()),
                              audit.c.chain.not_in(list(after))))
    if until is not None:  # bound as the column type would bind it (naive UTC on SQLite)
        dialect = session.get_bind().dialect
        stmt = stmt.where(audit.c.at <= UtcDateTime().process_bind_param(until, dialect))
    rows = session.connection().execute(stmt.order_by(audit.c.seq)).all()
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

    The chains are append-only, so a cached list is extended with the events past each chain's end
    (a call-out has its own chain and one per shard, store/audit.py), merged in `seq` order; the
    chain heads (length and hash, from `audit_chain`) say whether anything changed. Whether an
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
        self._data: OrderedDict[str, tuple[dict[str, tuple[int, str]], list[Row]]] = OrderedDict()
        self._size = 0
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._data)

    @property
    def size(self) -> int:
        """Events held."""
        return self._size

    def events(self, session: Any, subject: str) -> list[Row]:
        from store.audit import subject_heads

        heads = subject_heads(session, subject)  # chain -> (length, head)
        if not heads:
            return []
        key = f"{session.get_bind().url}|{subject}"
        with self._lock:
            cached = self._data.get(key)
        if cached is not None and cached[0] == heads:
            rows = cached[1]
        elif cached is not None and _grown(cached[0], heads) and len(cached[1]) == sum(n for n, _ in cached[0].values()):
            new = load_events(session, subject, after={c: n for c, (n, _) in cached[0].items()})
            rows = cached[1] + new  # (a chain's events may come before another's already held: in seq order)
            if new and cached[1] and new[0].seq < cached[1][-1].seq:
                rows.sort(key=lambda r: r.seq)
        else:
            rows = load_events(session, subject)
        self._keep(key, (heads, rows))
        return rows

    def _keep(self, key: str, entry: tuple[dict[str, tuple[int, str]], list[Row]]) -> None:
        with self._lock:
            old = self._data.pop(key, None)
            if old is not None:
                self._size -= len(old[1])
            if len(entry[1]) > self.max_events:
                return  # too large to keep: replayed from the database each time
            self._data[key] = entry  # most recently used last
            self._size += len(entry[1])
            while self._data and (self._size > self.max_events or len(self._data) > self.max_subjects):
                _, dropped = self._data.popitem(last=False)
                self._size -= len(dropped[1])

    def clear(self) -> None:
        with self._lock:
            self._data.clear()
            self._size = 0


def _grown(before: dict[str, tuple[int, str]], now: dict[str, tuple[int, str]]) -> bool:
    """Every chain held before is still there, at least as long (new chains may have begun)."""
    return all(c in now and now[c][0] >= n for c, (n, _) in before.items())
