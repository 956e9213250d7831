"""API tokens: random bearer tokens stored only as SHA-256 hashes."""
from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime

from sqlmodel import Field, Session, SQLModel, select

from store.types import now_utc, utc_column

ROLES = ("duty_staff", "duty_cadre", "duty_chief", "leading_leader", "commander", "supervisor", "admin")


class ApiToken(SQLModel, table=True):
    __tablename__ = "api_token"
    id: int | None = Field(default=None, primary_key=True)
    token_hash: str = Field(index=True, unique=True)
    role: str
    person_id: str | None = Field(default=None, foreign_key="person.id")
    label: str = ""
    created_at: datetime = Field(default_factory=now_utc, sa_column=utc_column(nullable=False))
    expires_at: datetime | None = Field(default=None, sa_column=utc_column())
    revoked: bool = False


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(session: Session, role: str, person_id: str | None = None, label: str = "",
                 expires_at: datetime | None = None) -> str:
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; roles: {', '.join(ROLES)}")
    token = "yj_" + secrets.token_urlsafe(32)
    session.add(ApiToken(token_hash=hash_token(token), role=role, person_id=person_id, label=label, expires_at=expires_at))
    return token


def lookup_token(session: Session, token: str) -> ApiToken | None:
    row = session.exec(select(ApiToken).where(ApiToken.token_hash == hash_token(token))).first()
    if row is None or row.revoked or (row.expires_at and row.expires_at <= now_utc()):
        return None
    return row


def same_secret(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())
