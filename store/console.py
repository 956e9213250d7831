"""Console login by one-time SMS code (seed 003 篇七): codes are stored only as keyed hashes."""
from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, SQLModel

from store.types import now_utc, utc_column


class LoginCode(SQLModel, table=True):
    """One code sent to one person: 6 digits, expires in minutes, works once, a few tries."""

    __tablename__ = "console_login_code"
    id: int | None = Field(default=None, primary_key=True)
    person_id: str = Field(foreign_key="person.id", index=True)
    code_hash: str = Field(description="HMAC-SHA256 of the code under the deployment's secret key")
    created_at: datetime = Field(default_factory=now_utc, sa_column=utc_column(nullable=False, index=True))
    expires_at: datetime = Field(sa_column=utc_column(nullable=False))
    used_at: datetime | None = Field(default=None, sa_column=utc_column())
    attempts: int = Field(default=0, description="wrong codes tried against this one")
    outbox_id: int | None = Field(default=None, description="the SMS that carried it")
