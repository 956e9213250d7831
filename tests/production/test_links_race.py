"""Two API processes spending the same signed link at once (PostgreSQL: nothing serialises their transactions): the
batch that loses the race spends the rest of its links one by one, and the link is spent once."""
from __future__ import annotations

from sqlalchemy import event

from store.db import get_engine, session_scope
from store.links import consume, consume_many, make_ack_token, read_ack_token


def test_a_link_spent_by_another_process_between_the_check_and_the_insert(db_url):
    a, b, c = (read_ack_token("k", make_ack_token("k", "callout-1", p)) for p in ("p1", "p2", "p3"))
    engine = get_engine(write=True)
    raced = []

    def other_process_spends_b(conn, cursor, statement, *_):
        # the barrier: right after the batch has looked up which of its links are spent, the other process
        # spends b and commits, before the batch inserts
        if not raced and statement.lstrip().upper().startswith("SELECT") and "used_link" in statement:
            raced.append(True)
            with session_scope() as other:
                consume(other, b)

    event.listen(engine, "after_cursor_execute", other_process_spends_b)
    try:
        with session_scope() as s:
            out = consume_many(s, [a, b, c])
    finally:
        event.remove(engine, "after_cursor_execute", other_process_spends_b)
    assert raced
    assert [e.reason if e else None for e in out] == [None, "used", None]
    with session_scope() as s:
        assert [e.reason for e in consume_many(s, [a, b, c])] == ["used", "used", "used"]
