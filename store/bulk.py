"""Many rows into one table in one statement, with their new keys back in order; many rows updated in one.

The hot paths write in batches: a shard's flush appends hundreds of audit events and claims hundreds of
outbox rows, the answer intake stores every reply of a burst at once. SQLAlchemy's batched
`INSERT … VALUES (…), (…) RETURNING` ("insertmanyvalues") is right for SQLite; on PostgreSQL its text grows
with the batch (one placeholder per value), and psycopg converts a statement over 4,096 bytes or 50
parameters afresh on every execution (it caches only short ones): 29 % of a PostgreSQL worker's samples while
it sent (docs/performance.md "Where PostgreSQL's extra CPU goes"). One array parameter per column (`unnest`) was tried
next: a short statement, but psycopg adapts every array element in Python (24 % of the samples). On
PostgreSQL the rows go instead as one JSON document (`_document`, ~1 ms for 500 audit events) and taken apart by
the server, each row parsed once into the table's column types:

    INSERT INTO t (a, b) SELECT u.a, u.b
        FROM ROWS FROM (json_to_recordset(CAST(%(rows)s AS JSON)) AS (a VARCHAR, b JSON)) WITH ORDINALITY
        AS u(a, b, row_order) ORDER BY row_order RETURNING t.id

one statement, one parameter, whatever the batch: psycopg converts it once and caches it. (Each column was first
taken with `e->>'a'` from `json_array_elements`: a `json` value is text, and every `->>` parsed the row's text again
from its start, 22 times for an outbox row: a batch of 500 took 72 ms that way and 23 ms as a record set, 500 audit
events 34 and 15.5 ms; `bench/bulk_insert.py`, docs/performance.md "Each row parsed once".) `update_rows` writes a
batch's changes the same way, `UPDATE … FROM` the record set.
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable, Iterator, Sequence
from datetime import UTC, datetime
from functools import cache
from typing import Any

import orjson
from sqlalchemy import (JSON, Column, ColumnElement, Row, Select, Table, Text, TextClause, bindparam, cast, func,
                        select, text, update)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Session


def insert_returning(session: Session, table: Table, rows: Sequence[dict[str, Any]], key: Column,
                     encoded: Collection[str] = ()) -> list[Any]:
    """Insert `rows` (dicts of column name → value, every row with the same names) and return the `key`
    column of each, in the order of `rows`. `key` must be the table's autoincrement primary key (on
    PostgreSQL the order comes from its sequence, as SQLAlchemy's own sorted RETURNING does).

    The JSON columns named in `encoded` are given as JSON text, stored as it is (not encoded again: the audit
    trail has each payload's text already, made to read its plain values back)."""
    if not rows:
        return []
    given = rows[0].keys()
    if any(r.keys() != given for r in rows):
        raise ValueError(f"insert into {table.name}: every row must give the same columns ({', '.join(given)})")
    if key is not table.autoincrement_column:  # on every database, as the defaults below
        raise ValueError(f"insert into {table.name}: {key.name} is not its autoincrement key")
    names = tuple(given)
    encoded = frozenset(encoded)
    _check_defaults(table, names)
    _check_encoded(table, names, encoded)
    if any(not isinstance(r[name], str) for r in rows for name in encoded):
        raise ValueError(f"insert into {table.name}: {', '.join(sorted(encoded))} must be given as JSON text")
    dialect = session.get_bind().dialect
    if dialect.name != "postgresql":
        statement = table.insert().values({name: bindparam(name, type_=Text()) for name in encoded})
        return list(session.execute(statement.returning(key, sort_by_parameter_order=True), list(rows)).scalars())
    statement = _json_insert(table, names, key.name, dialect, encoded)
    keys = sorted(session.execute(statement, {"rows": _document(rows)}).scalars())
    if len(keys) != len(rows):  # pragma: no cover - PostgreSQL inserts every row or fails
        raise RuntimeError(f"insert into {table.name}: {len(keys)} keys back for {len(rows)} rows")
    return keys


@cache
def _check_encoded(table: Table, names: tuple[str, ...], encoded: frozenset[str]) -> None:
    wrong = sorted(n for n in encoded if n not in names or not isinstance(table.c[n].type, JSON))
    if wrong:
        raise ValueError(f"insert into {table.name}: {', '.join(wrong)} given as JSON text but not a JSON column given")


@cache
def _check_defaults(table: Table, names: tuple[str, ...]) -> None:
    """Every column with a Python-side default is given: SQLAlchemy's insert fills those in, the JSON statement
    would store NULL (refused on every database alike, so that a caller tested on SQLite holds on PostgreSQL)."""
    missing = [c.name for c in table.columns if c.name not in names and c.default is not None]
    if missing:
        raise ValueError(f"insert into {table.name}: give {', '.join(missing)} (a Python-side default)")


@cache
def _json_insert(table: Table, names: tuple[str, ...], key: str, dialect: Dialect, encoded: frozenset[str]) -> TextClause:
    quote = dialect.identifier_preparer.quote
    rows, values = _record_set(table, names, dialect, encoded)
    return text(
        f"INSERT INTO {dialect.identifier_preparer.format_table(table)} ({', '.join(quote(n) for n in names)}) "
        f"SELECT {', '.join(values)} FROM {rows} ORDER BY row_order RETURNING {quote(key)}")


def _record_set(table: Table, names: tuple[str, ...], dialect: Dialect,
                encoded: frozenset[str] = frozenset()) -> tuple[str, list[str]]:
    """The `:rows` JSON document as a record set `u` of the columns `names` in the table's types, with each row's
    place (`row_order`), and the value of each column to write."""
    quote = dialect.identifier_preparer.quote
    given, values = [], []
    for name in names:
        sql_type = table.c[name].type.compile(dialect=dialect)
        if name in encoded:  # a JSON column given as JSON text: read as the text, then cast to the column's JSON type
            given.append(f"{quote(name)} TEXT")
            values.append(f"CAST(u.{quote(name)} AS {sql_type})")
        else:  # every other column read as its own type (a JSON column takes the value as JSON)
            given.append(f"{quote(name)} {sql_type}")
            values.append(f"u.{quote(name)}")
    rows = (f"ROWS FROM (json_to_recordset(CAST(:rows AS JSON)) AS ({', '.join(given)})) "
            f"WITH ORDINALITY AS u({', '.join(quote(n) for n in names)}, row_order)")
    return rows, values


def update_rows(session: Session, table: Table, key: Column, rows: Sequence[dict[str, Any]]) -> None:
    """Write each of `rows` (dicts of column name → value, every row with the same names, `key`'s among them) on
    the row whose `key` it gives: the columns it gives, and no other.

    On PostgreSQL one statement for the batch (`UPDATE … FROM` the rows as a JSON record set, as `insert_returning`
    takes them): as an executemany each row was a statement of its own, which psycopg prepared in Python (10 ms of
    the worker's CPU for 400 outbox rows, 3 ms as one statement). The server's time is the same either way: it goes
    to the indexes of the rows' new versions. Elsewhere an executemany. The rows are the caller's to lock first, in an
    order of its choosing."""
    if not rows:
        return
    given = rows[0].keys()
    if any(r.keys() != given for r in rows):
        raise ValueError(f"update of {table.name}: every row must give the same columns ({', '.join(given)})")
    if key.name not in given or len(given) < 2:
        raise ValueError(f"update of {table.name}: each row gives {key.name} and the columns to write")
    if len({r[key.name] for r in rows}) != len(rows):
        raise ValueError(f"update of {table.name}: a row is given twice")
    dialect = session.get_bind().dialect
    if dialect.name != "postgresql":
        by = f"_{key.name}"  # (a bind parameter may not take the name of a column the statement sets)
        session.execute(update(table).where(key == bindparam(by)),
                        [{by if name == key.name else name: value for name, value in r.items()} for r in rows])
        return
    session.execute(_json_update(table, tuple(given), key.name, dialect), {"rows": _document(rows)})


@cache
def _json_update(table: Table, names: tuple[str, ...], key: str, dialect: Dialect) -> TextClause:
    quote = dialect.identifier_preparer.quote
    rows, values = _record_set(table, names, dialect)
    sets = ", ".join(f"{quote(n)} = {v}" for n, v in zip(names, values, strict=True) if n != key)
    name = dialect.identifier_preparer.format_table(table)
    return text(f"UPDATE {name} SET {sets} FROM {rows} WHERE {name}.{quote(key)} = u.{quote(key)}")


def _document(rows: Sequence[Any]) -> str:
    """The rows (or `one_of`'s keys) as one JSON document: orjson, 2.7× the json module's C encoder on a batch of
    outbox rows (7 % of a sending worker's CPU was this encoding), with the same text; datetimes are `_json_value`'s to write (a naive one
    is refused), keys that are not strings written as their text, as the json module writes them. (The audit trail's
    canonical text is store/audit.py's, with the json module: this is only the rows' way to the server.)"""
    try:
        return orjson.dumps(rows, default=_json_value,
                            option=orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_NON_STR_KEYS).decode()
    except orjson.JSONEncodeError as exc:  # `_json_value`'s own error, not orjson's wrapper that hides its message
        raise (exc.__cause__ or exc) from None


def _json_value(value: Any) -> str:
    """What JSON has no type for, as PostgreSQL reads it back: a datetime (tz-aware, as the UTC columns require).
    (Inside a JSON column's value too, where SQLAlchemy's own insert would refuse it: the callers store plain
    JSON there — the audit trail's payloads (given as their text), the outbox's meta, an answer's form.)"""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC).isoformat()
    raise TypeError(f"{type(value).__name__} is not stored by a bulk insert: {value!r}")


def by_pairs(session: Session, stmt: Select, first: ColumnElement[Any], second: ColumnElement[Any],
             pairs: Iterable[tuple[Any, Any]]) -> Iterator[Row]:
    """The rows of `stmt` whose (`first`, `second`) is one of `pairs`: one query per value of `first` (a call-out, a
    subject: one or a few in a batch), `second IN` its values as one parameter (`one_of`).

    Not a row-value `(first, second) IN (…)`: PostgreSQL turns that into an OR of pairs, and where its statistics
    do not know the table yet (a call-out's 100,000 targets and its messages are written minutes before the answers
    come, faster than autovacuum analyzes them) it reads every row of the call-out and tests each against the whole
    OR: 0.4 s for 256 answers on an idle copy of the table, 1.2–2.4 s in the middle of a district-wide call-out,
    where it was most of an SMS reply's way to the board (docs/performance.md, "The lookup, not the locks")."""
    for query in pair_queries(session, stmt, first, second, pairs):
        yield from session.execute(query)


def pair_queries(session: Session, stmt: Select, first: ColumnElement[Any], second: ColumnElement[Any],
                 pairs: Iterable[tuple[Any, Any]]) -> list[Select]:
    """The statements `by_pairs` runs: `stmt` where `first` is one value and `second` one of its values."""
    grouped: dict[Any, set[Any]] = defaultdict(set)
    for a, b in pairs:
        grouped[a].add(b)
    return [stmt.where(first == a, one_of(session, second, sorted(values))) for a, values in sorted(grouped.items())]


def one_of(session: Session, column: ColumnElement[Any], values: Iterable[Any]) -> ColumnElement[bool]:
    """`column IN (values)`, the values given as one JSON parameter rather than one parameter each.

    The hot paths look up hundreds of rows by key (a batch's events, targets and outbox rows, a burst's answers):
    SQLAlchemy renders an IN list's parameters afresh on every execution, and psycopg converts a statement over
    4,096 bytes or 50 parameters afresh too; with one JSON parameter the statement is short and the same whatever
    the count (the database takes the list apart: `json_each` on SQLite, `json_array_elements_text` on
    PostgreSQL). Values are strings or integers (their JSON encodings)."""
    doc = bindparam(None, _document(list(values)), type_=Text())
    if session.get_bind().dialect.name == "postgresql":
        return column.in_(select(cast(func.json_array_elements_text(cast(doc, JSON)).column_valued("v"), column.type)))
    return column.in_(select(func.json_each(doc).table_valued("value").c.value))

