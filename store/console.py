"""Console login by one-time SMS code (seed 003 篇七) and console sessions, kept server-side.

Codes and session ids are stored only as keyed or plain hashes: the database holds nothing
that logs in."""
from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, SQLModel

from store.types import now_utc, utc_column


class LoginCode(SQLModel, table=True):
    """One code sent to one person: 6 digits, expires in minutes, works once, a few tries, and only
    in the browser that asked for it (`client_hash`)."""

    __tablename__ = "console_login_code"
    id: int | None = Field(default=None, primary_key=True)
    person_id: str = Field(foreign_key="person.id", index=True)
    code_hash: str = Field(description="HMAC-SHA256 of the code under the deployment's secret key")
    created_at: datetime = Field(default_factory=now_utc, sa_column=utc_column(nullable=False, index=True))
    expires_at: datetime = Field(sa_column=utc_column(nullable=False))
    used_at: datetime | None = Field(default=None, sa_column=utc_column())
    attempts: int = Field(default=0, description="wrong codes tried against this one")
    outbox_id: int | None = Field(default=None, description="the SMS that carried it")
    client_hash: str | None = Field(default=None, description="SHA-256 of the login form's cookie of the browser "
                                                              "that asked: the code works only there")


class ConsoleSession(SQLModel, table=True):
    """A console session: the cookie names it, logging out ends it (the cookie alone is not enough)."""

    __tablename__ = "console_session"
    id: str = Field(primary_key=True, description="SHA-256 of the random session id in the cookie")
    method: str = Field(description="admin | token | sms")
    person_id: str | None = None
    token_id: int | None = None
    created_at: datetime = Field(default_factory=now_utc, sa_column=utc_column(nullable=False))
    expires_at: datetime = Field(sa_column=utc_column(nullable=False, index=True))
    ended_at: datetime | None = Field(default=None, sa_column=utc_column())
