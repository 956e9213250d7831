"""store/bulk.py on PostgreSQL: tests/unit/test_bulk_insert.py again (imported: collected here with this folder's
`db_url`), and the reason the module exists: whatever the batch, one short statement with one parameter (the rows as
JSON), which psycopg converts once and caches (it converts a statement over 4,096 bytes or 50 parameters afresh each
time), with two batches at once."""
from __future__ import annotations

import threading

from psycopg import _queries
from sqlalchemy import event

from store.bulk import insert_returning
from store.db import get_engine, session_scope
from tests.unit.test_bulk_insert import (TABLE, _rows, _stored, test_a_column_left_to_its_python_default_is_refused,
                                         test_by_pairs_finds_the_rows_of_each_pair_and_no_other,
                                         test_a_json_column_given_as_json_text_is_stored_as_that_text_says,
                                         test_a_naive_datetime_is_refused,
                                         test_json_text_is_taken_only_for_a_json_column_and_only_as_text,
                                         test_one_of_finds_the_rows_whose_value_is_among_those_given,
                                         test_every_row_is_stored_as_given_and_its_key_comes_back_in_order,
                                         test_no_rows_no_statement, test_rows_that_differ_in_their_columns_are_refused,
                                         test_update_rows_refuses_rows_it_cannot_write_as_one,
                                         test_update_rows_writes_the_columns_each_row_gives_on_its_own_row_and_no_other)

ON_POSTGRES = (test_a_column_left_to_its_python_default_is_refused, test_a_naive_datetime_is_refused,
               test_by_pairs_finds_the_rows_of_each_pair_and_no_other,
               test_a_json_column_given_as_json_text_is_stored_as_that_text_says,
               test_json_text_is_taken_only_for_a_json_column_and_only_as_text,
               test_one_of_finds_the_rows_whose_value_is_among_those_given,
               test_every_row_is_stored_as_given_and_its_key_comes_back_in_order, test_no_rows_no_statement,
               test_rows_that_differ_in_their_columns_are_refused,
               test_update_rows_refuses_rows_it_cannot_write_as_one,
               test_update_rows_writes_the_columns_each_row_gives_on_its_own_row_and_no_other)


def _statements(db_url: str, run) -> list[tuple[str, object]]:
    """The statements (and their parameters) sent while `run(session, n)` runs for 3 and for 700 rows or keys."""
    seen: list[tuple[str, object]] = []
    engine = get_engine(db_url, write=True)
    listen = lambda _c, _cur, statement, params, *_: seen.append((statement, params))  # noqa: E731
    event.listen(engine, "before_cursor_execute", listen)
    try:
        for n in (3, 700):
            with session_scope() as s:
                run(s, n)
    finally:
        event.remove(engine, "before_cursor_execute", listen)
    return seen


def test_one_short_statement_whatever_the_batch(db_url: str) -> None:
    seen = _statements(db_url, lambda s, n: insert_returning(s, TABLE, _rows(f"b{n}", n), TABLE.c.id))
    inserts = [(st, p) for st, p in seen if st.startswith("INSERT")]
    assert len(inserts) == 2 and inserts[0][0] == inserts[1][0]
    statement, params = inserts[1]
    assert len(statement.encode()) <= _queries.MAX_CACHED_STATEMENT_LENGTH
    assert list(params) == ["rows"]


def test_an_update_of_many_rows_is_one_short_statement(db_url: str) -> None:
    """The reason for `update_rows`: as an executemany, each row was a statement of its own for the server."""
    from store.bulk import update_rows

    def run(s, n: int) -> None:
        keys = insert_returning(s, TABLE, _rows(f"u{n}", n), TABLE.c.id)
        update_rows(s, TABLE, TABLE.c.id, [{"id": k, "status": "sent", "meta": {"n": i}} for i, k in enumerate(keys)])

    seen = _statements(db_url, run)
    updates = [(st, p) for st, p in seen if st.startswith("UPDATE")]
    assert len(updates) == 2 and updates[0][0] == updates[1][0]
    statement, params = updates[1]
    assert len(statement.encode()) <= _queries.MAX_CACHED_STATEMENT_LENGTH and list(params) == ["rows"]


def test_concurrent_batches_each_get_their_own_keys(db_url: str) -> None:
    """Two batches inserted at the same moment (a barrier before each statement) share the key sequence;
    each gets the keys of its own rows, in its own order."""
    barrier = threading.Barrier(2)
    results: dict[str, list[int]] = {}
    batches = {tag: _rows(tag, 800) for tag in ("left", "right")}

    def insert(tag: str) -> None:
        with session_scope() as s:
            s.connection()  # begun: the barrier releases both right before their INSERTs
            barrier.wait(timeout=30)
            results[tag] = insert_returning(s, TABLE, batches[tag], TABLE.c.id)

    threads = [threading.Thread(target=insert, args=(tag,)) for tag in batches]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    for tag, rows in batches.items():
        stored = _stored(results[tag])
        assert [stored[k].idempotency_key for k in results[tag]] == [r["idempotency_key"] for r in rows]


def test_one_of_is_one_short_statement_whatever_the_count(db_url: str) -> None:
    """The reason for `one_of`: an IN list of hundreds of keys was a statement psycopg converted afresh each time."""
    from sqlmodel import select

    from store.bulk import one_of

    seen = _statements(db_url, lambda s, n: s.exec(select(TABLE.c.id).where(
        one_of(s, TABLE.c.idempotency_key, [f"k{i}" for i in range(n)]))).all())
    (first, p1), (second, p2) = [(st, p) for st, p in seen if st.startswith("SELECT")]
    assert first == second and len(second.encode()) <= _queries.MAX_CACHED_STATEMENT_LENGTH
    assert len(p1) == len(p2) == 1


def test_by_pairs_tests_no_or_of_pairs_where_the_statistics_know_nothing(db_url: str) -> None:
    """The reason for `by_pairs`: a row-value IN of (call-out, person) pairs, on a table PostgreSQL has not analyzed
    yet (a call-out's targets written minutes before the answers come), was planned as a read of every row of the
    call-out, each tested against an OR of all the pairs (0.4 s for 256 answers and 100,000 targets, seconds on a
    busy machine: docs/performance.md, "The lookup, not the locks"). Its statement tests each row against one set of
    values."""
    from sqlalchemy import text
    from sqlmodel import select

    from store.bulk import pair_queries
    from store.callouts import CalloutTarget
    from tests.factories import unanalyzed_targets

    table = CalloutTarget.__table__
    with session_scope() as s:
        unanalyzed_targets(s, "CO-plan", 20000)
    pairs = [("CO-plan", f"p{i}") for i in range(1, 20000, 78)]  # 257 answers
    with session_scope(write=False) as s:
        (query,) = pair_queries(s, select(table.c.id), table.c.callout_id, table.c.person_id, pairs)
        sql = str(query.compile(get_engine(), compile_kwargs={"literal_binds": True}))
        plan = "\n".join(r[0] for r in s.execute(text("EXPLAIN (ANALYZE) " + sql)))
        found = s.execute(query).scalars().all()
    assert len(found) == len(pairs)
    assert " OR " not in plan, plan[:800]
