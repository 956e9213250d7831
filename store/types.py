"""Column types shared by the tables."""
from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, Column, DateTime
from sqlalchemy.types import TypeDecorator


class UtcDateTime(TypeDecorator):
    """Timezone-aware UTC datetimes on every backend (SQLite stores naive UTC)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utc_column(*, nullable: bool = True, index: bool = False) -> Column:
    return Column(UtcDateTime(), nullable=nullable, index=index)


def json_column(*, nullable: bool = True) -> Column:
    return Column(JSON, nullable=nullable)


def non_finite(value: Any) -> tuple[str, float] | None:
    """Where a JSON value holds a float that JSON has no number for (NaN, Infinity, -Infinity), as a path the way the
    API's 422s name a field (`figures.crop_area_ha`, `items.0.quantity`; "" for the value itself), and that float;
    None when every number is finite. PostgreSQL's JSON type refuses such a document, SQLite stores it: what goes into
    a JSON column is finite (store/audit.py `append`, api/security.py for request bodies)."""
    if isinstance(value, float):
        return None if math.isfinite(value) else ("", value)
    if isinstance(value, dict):
        items: Any = value.items()
    elif isinstance(value, list | tuple):
        items = enumerate(value)
    else:
        return None
    for key, item in items:
        found = non_finite(item)
        if found is not None:
            return (f"{key}.{found[0]}" if found[0] else str(key)), found[1]
    return None


def empty_list() -> list:
    """`default_factory` of a table's list field. Not the builtin `list`: SQLModel asks pydantic, on every row it
    constructs, whether the factory takes the validated data, and pydantic reads a builtin's signature by parsing
    its text (~55 µs a field; a call-out target's three such fields were 17 % of the worker's CPU while it sent,
    bench/callout.py --profile); a Python function's signature is read from its code (~4 µs)."""
    return []


def empty_dict() -> dict:
    """`default_factory` of a table's dict field (see empty_list)."""
    return {}


def now_utc() -> datetime:
    return datetime.now(UTC)
