"""Many rows into one table in one statement, with their new keys back in order.

The hot paths write in batches: a shard's flush appends hundreds of audit events and claims hundreds of
outbox rows, the answer intake stores every reply of a burst at once. SQLAlchemy's batched
`INSERT … VALUES (…), (…) RETURNING` ("insertmanyvalues") is right for SQLite; on PostgreSQL its text grows
with the batch (one placeholder per value), and psycopg converts a statement over 4,096 bytes or 50
parameters afresh on every execution (it caches only short ones): 29 % of a PostgreSQL worker's samples while
it sent (README "Where PostgreSQL's extra CPU goes"). On PostgreSQL the rows go instead as one array per
column, unnested:

    INSERT INTO t (a, b) SELECT a, b FROM unnest(CAST(%(a)s AS VARCHAR[]), CAST(%(b)s AS JSON[]))
        WITH ORDINALITY AS u(a, b, ord) ORDER BY ord RETURNING t.id

a short statement of one parameter per column whatever the batch, which psycopg converts once and caches.
The values pass through each column type's own bind processing (UTC datetimes, JSON) as with SQLAlchemy's.
"""
from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from typing import Any

from sqlalchemy import Column, Table, text
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Session


def insert_returning(session: Session, table: Table, rows: Sequence[dict[str, Any]], key: Column) -> list[Any]:
    """Insert `rows` (dicts of column name → value, every row with the same names) and return the `key`
    column of each, in the order of `rows`. `key` must be the table's autoincrement primary key (on
    PostgreSQL the order comes from its sequence, as SQLAlchemy's own sorted RETURNING does)."""
    if not rows:
        return []
    given = rows[0].keys()
    if any(r.keys() != given for r in rows):
        raise ValueError(f"insert into {table.name}: every row must give the same columns ({', '.join(given)})")
    names = tuple(given)
    _check_defaults(table, names)
    dialect = session.get_bind().dialect
    if dialect.name != "postgresql":
        return list(session.execute(table.insert().returning(key, sort_by_parameter_order=True), list(rows)).scalars())
    if key is not table.autoincrement_column:
        raise ValueError(f"insert into {table.name}: {key.name} is not its autoincrement key")
    statement, processors = _unnest_insert(table, names, key.name, dialect)
    params = {}
    for i, name in enumerate(names):
        process = processors[i]
        params[f"c{i}"] = [r[name] for r in rows] if process is None else [process(r[name]) for r in rows]
    keys = sorted(session.execute(statement, params).scalars())
    if len(keys) != len(rows):  # pragma: no cover - PostgreSQL inserts every row or fails
        raise RuntimeError(f"insert into {table.name}: {len(keys)} keys back for {len(rows)} rows")
    return keys


@cache
def _check_defaults(table: Table, names: tuple[str, ...]) -> None:
    """Every column with a Python-side default is given: SQLAlchemy's insert fills those in, the unnest statement
    would store NULL (refused on every database alike, so that a caller tested on SQLite holds on PostgreSQL)."""
    missing = [c.name for c in table.columns if c.name not in names and c.default is not None]
    if missing:
        raise ValueError(f"insert into {table.name}: give {', '.join(missing)} (a Python-side default)")


@cache
def _unnest_insert(table: Table, names: tuple[str, ...], key: str, dialect: Dialect):
    quote = dialect.identifier_preparer.quote
    columns = [table.c[name] for name in names]
    arrays = [f"CAST(:c{i} AS {c.type.compile(dialect=dialect)}[])" for i, c in enumerate(columns)]
    listed = ", ".join(quote(c.name) for c in columns)
    statement = text(
        f"INSERT INTO {dialect.identifier_preparer.format_table(table)} ({listed}) "
        f"SELECT {', '.join(f'u.{quote(c.name)}' for c in columns)} FROM unnest({', '.join(arrays)}) "
        f"WITH ORDINALITY AS u({listed}, _ord) ORDER BY _ord RETURNING {quote(key)}")
    processors = tuple(c.type.dialect_impl(dialect).bind_processor(dialect) for c in columns)
    return statement, processors

