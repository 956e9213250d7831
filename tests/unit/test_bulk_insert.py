"""store/bulk.py: many rows in one statement, their keys back in the rows' order, every value stored as given.
Here on SQLite; tests/production/test_bulk_insert_postgres.py runs them on PostgreSQL (its JSON statement), with
two batches at once (on SQLite one process's writes take turns) and the statement's shape."""
from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import event

from store.bulk import insert_returning, one_of
from store.db import get_engine, session_scope
from store.messages import OutboxMessage

TABLE = OutboxMessage.__table__
AT = datetime(2026, 7, 1, 2, 30, tzinfo=UTC)


def _rows(tag: str, n: int) -> list[dict]:
    """Outbox rows: a reserved word (`to`), booleans, integers, NULLs, UTC datetimes and JSON among the columns."""
    return [{"idempotency_key": f"{tag}-{i}", "gateway": "simulator", "channel": "sms" if i % 2 else "voice",
             "to": f"+86138{i:08d}", "person_id": None if i % 3 == 0 else f"p{i}", "subject": tag, "workflow_id": None,
             "reply_code": f"{i:04d}", "body": f"请回复 {i} — 叫应", "ack_url": None, "drill": i % 5 == 0, "priority": i % 7,
             "status": "sending", "provider_id": None, "error": None, "created_at": AT + timedelta(seconds=i),
             "sent_at": None, "updated_at": None, "meta": {"voice_text": f"第{i}位", "n": i, "tags": ["a", None]},
             "claim_by": "wf/run/act", "claim_attempt": 1, "gateway_at": None} for i in range(n)]


def _stored(keys: list[int]) -> dict[int, OutboxMessage]:
    from sqlmodel import col, select

    with session_scope(write=False) as s:
        return {r.id: r for r in s.exec(select(OutboxMessage).where(col(OutboxMessage.id).in_(keys)))}


def test_every_row_is_stored_as_given_and_its_key_comes_back_in_order(db_url: str) -> None:
    rows = _rows("order", 1200)
    with session_scope() as s:
        keys = insert_returning(s, TABLE, rows, TABLE.c.id)
    assert len(keys) == len(set(keys)) == 1200
    stored = _stored(keys)
    for row, key in zip(rows, keys, strict=True):
        got = stored[key]
        assert {name: getattr(got, name) for name in row} == row


def test_a_json_column_given_as_json_text_is_stored_as_that_text_says(db_url: str) -> None:
    """`encoded`: a JSON column's values given as JSON text (the audit trail's payloads, whose text it has already)
    are stored as the value the text says, not as a string of it."""
    rows = _rows("text", 5)
    for row in rows:
        row["meta"] = json.dumps(row["meta"], ensure_ascii=False, separators=(",", ":"), sort_keys=True)
    with session_scope() as s:
        keys = insert_returning(s, TABLE, rows, TABLE.c.id, encoded=("meta",))
    stored = _stored(keys)
    for row, key in zip(rows, keys, strict=True):
        assert stored[key].meta == json.loads(row["meta"]) and stored[key].to == row["to"]


def test_json_text_is_taken_only_for_a_json_column_and_only_as_text(db_url: str) -> None:
    rows = _rows("wrong", 2)
    with session_scope() as s, pytest.raises(ValueError, match="body given as JSON text but not a JSON column"):
        insert_returning(s, TABLE, rows, TABLE.c.id, encoded=("body",))
    with session_scope() as s, pytest.raises(ValueError, match="meta must be given as JSON text"):
        insert_returning(s, TABLE, rows, TABLE.c.id, encoded=("meta",))


def test_rows_that_differ_in_their_columns_are_refused(db_url: str) -> None:
    rows = _rows("ragged", 3)
    del rows[1]["meta"]
    with session_scope() as s, pytest.raises(ValueError, match="every row must give the same columns"):
        insert_returning(s, TABLE, rows, TABLE.c.id)


def test_a_column_left_to_its_python_default_is_refused(db_url: str) -> None:
    """SQLAlchemy's insert fills a Python-side default in (`priority` 100); the unnest statement would store NULL,
    so it is refused on every database (a caller tested on SQLite holds on PostgreSQL)."""
    rows = _rows("default", 2)
    for r in rows:
        del r["priority"]
    with session_scope() as s, pytest.raises(ValueError, match="give priority"):
        insert_returning(s, TABLE, rows, TABLE.c.id)


def test_a_naive_datetime_is_refused(db_url: str) -> None:
    rows = _rows("naive", 2)
    rows[1]["created_at"] = datetime(2026, 7, 1, 2, 30)
    with session_scope() as s, pytest.raises(Exception, match="naive datetime"):
        insert_returning(s, TABLE, rows, TABLE.c.id)


def test_no_rows_no_statement(db_url: str) -> None:
    statements: list[str] = []
    engine = get_engine(db_url, write=True)
    listen = lambda *args: statements.append(args[2])  # noqa: E731 - before_cursor_execute's statement
    event.listen(engine, "before_cursor_execute", listen)
    try:
        with session_scope() as s:
            assert insert_returning(s, TABLE, [], TABLE.c.id) == []
    finally:
        event.remove(engine, "before_cursor_execute", listen)
    assert not [st for st in statements if "INSERT" in st]


def test_one_of_finds_the_rows_whose_value_is_among_those_given(db_url: str) -> None:
    """`one_of`: `IN` with the values as one JSON parameter, for strings (quotes, Chinese) and integers, and none."""
    from sqlmodel import select

    rows = _rows("among", 6)
    rows[2]["idempotency_key"], rows[3]["idempotency_key"] = 'among-"引号"\\', "among-叫应"
    with session_scope() as s:
        keys = insert_returning(s, TABLE, rows, TABLE.c.id)
    wanted = [rows[i]["idempotency_key"] for i in (0, 2, 3)] + ["among-none"]
    with session_scope(write=False) as s:
        by_key = set(s.exec(select(TABLE.c.id).where(one_of(s, TABLE.c.idempotency_key, wanted))).all())
        by_id = set(s.exec(select(TABLE.c.idempotency_key).where(one_of(s, TABLE.c.id, [keys[1], keys[4], -1]))).all())
        none = s.exec(select(TABLE.c.id).where(one_of(s, TABLE.c.id, []))).all()
    assert by_key == {keys[0], keys[2], keys[3]}
    assert by_id == {rows[1]["idempotency_key"], rows[4]["idempotency_key"]}
    assert none == []


def test_by_pairs_finds_the_rows_of_each_pair_and_no_other(db_url: str) -> None:
    """`by_pairs`: the rows whose (subject, person) is one of the pairs given, not every person of every subject
    (the pairs (A, p1) and (B, p2) do not find (A, p2))."""
    from sqlmodel import select

    from store.bulk import by_pairs

    rows = []
    for subject in ("pairs-A", "pairs-B"):
        for r in _rows(subject, 4):
            r["person_id"] = f"p{r['idempotency_key'][-1]}"
            rows.append(r)
    with session_scope() as s:
        insert_returning(s, TABLE, rows, TABLE.c.id)
    wanted = [("pairs-A", "p1"), ("pairs-B", "p2"), ("pairs-B", "p3"), ("pairs-C", "p1"), ("pairs-A", "p9")]
    with session_scope(write=False) as s:
        found = sorted(by_pairs(s, select(TABLE.c.subject, TABLE.c.person_id), TABLE.c.subject, TABLE.c.person_id,
                                wanted))
        none = list(by_pairs(s, select(TABLE.c.id), TABLE.c.subject, TABLE.c.person_id, []))
    assert [tuple(r) for r in found] == [("pairs-A", "p1"), ("pairs-B", "p2"), ("pairs-B", "p3")]
    assert none == []


def test_update_rows_writes_the_columns_each_row_gives_on_its_own_row_and_no_other(db_url: str) -> None:
    """`update_rows`: each row's values land on the row its key names (JSON, NULLs and UTC datetimes among them);
    rows not named and columns not given keep what they had."""
    from store.bulk import update_rows

    rows = _rows("upd", 6)
    with session_scope() as s:
        keys = insert_returning(s, TABLE, rows, TABLE.c.id)
    later = AT + timedelta(minutes=5)
    writes = [{"id": key, "status": "sent" if n % 2 else "failed", "provider_id": None if n % 2 else f"SM{n}",
               "sent_at": later + timedelta(seconds=n), "meta": {"n": n, "seen": [True, None]}}
              for n, key in enumerate(keys[:4])]
    with session_scope() as s:
        update_rows(s, TABLE, TABLE.c.id, list(reversed(writes)))
    stored = _stored(keys)
    for write in writes:
        got = stored[write["id"]]
        assert {name: getattr(got, name) for name in write} == write
        assert got.body == rows[keys.index(write["id"])]["body"]  # a column not given: as it was
    for key, row in zip(keys[4:], rows[4:], strict=True):
        assert {name: getattr(stored[key], name) for name in row} == row


def test_update_rows_refuses_rows_it_cannot_write_as_one(db_url: str) -> None:
    from store.bulk import update_rows

    with session_scope() as s:
        (key,) = insert_returning(s, TABLE, _rows("bad", 1), TABLE.c.id)
        for rows, said in (([{"id": key, "status": "sent"}, {"id": key + 1}], "same columns"),
                           ([{"status": "sent"}], "gives id"), ([{"id": key}], "gives id"),
                           ([{"id": key, "status": "a"}, {"id": key, "status": "b"}], "given twice")):
            with pytest.raises(ValueError, match=said):
                update_rows(s, TABLE, TABLE.c.id, rows)
        update_rows(s, TABLE, TABLE.c.id, [])  # nothing to write: not refused
