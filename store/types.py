"""Column types shared by the tables."""
from __future__ import annotations

from datetime import UTC, datetime

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


def now_utc() -> datetime:
    return datetime.now(UTC)
