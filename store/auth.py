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


# ------------------------------------------------------------------ managing tokens (api/services/users.py)


def list_tokens(session: Session) -> list[tuple[ApiToken, datetime | None]]:
    """Every token, newest first, with when it last started a console session (None: never, or only by API)."""
    from sqlmodel import col, func

    from store.console import ConsoleSession

    last = dict(session.exec(select(ConsoleSession.token_id, func.max(ConsoleSession.created_at))
                             .where(col(ConsoleSession.token_id).is_not(None)).group_by(ConsoleSession.token_id)).all())
    rows = session.exec(select(ApiToken).order_by(col(ApiToken.id).desc()))
    return [(row, _aware(last.get(row.id))) for row in rows]


def _aware(at: datetime | None) -> datetime | None:
    from datetime import UTC

    return at.replace(tzinfo=UTC) if at is not None and at.tzinfo is None else at


def token_row(session: Session, token_id: int) -> ApiToken | None:
    return session.get(ApiToken, token_id)


def set_role(session: Session, row: ApiToken, role: str) -> None:
    """Change a token's role: its console sessions follow at their next request (they read the row)."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; roles: {', '.join(ROLES)}")
    row.role = role
    session.add(row)


def record(session: Session, kind: str, actor: str, row: ApiToken, channel: str, **extra: object) -> None:
    """The audit event of a change to a token (workflows/kit/events.py `Access`): never the token itself."""
    import uuid

    from store.audit import NewEvent, append

    append(session, [NewEvent(subject="access", kind=kind, step_id=f"token/{row.id}/{uuid.uuid4().hex[:12]}",
                              actor=actor, channel=channel,
                              payload={"token_id": row.id, "label": row.label, "role": row.role,
                                       "person_id": row.person_id, **extra})])


def revoke(session: Session, row: ApiToken) -> None:
    """Revoke a token: it no longer logs in, and its console sessions end at their next request."""
    row.revoked = True
    session.add(row)
