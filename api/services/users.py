"""Users and their API tokens, for the admin: the list (role, the directory person a token is bound to,
created, last console login, revoked), creating a token for a role (shown once: only its hash is kept),
changing a token's role and revoking it. Every change is an audit event under the subject `access`
(workflows/kit/events.py `Access`). Run with a database session; the caller checks that the actor is admin."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel import Session, select

from api.services.errors import ServiceError
from store import auth as tokens
from store.directory import Person
from workflows.kit.events import Access
from workflows.kit.roles import ROLE_NAMES, role_name


class UserError(ServiceError):
    pass


@dataclass
class TokenRow:
    id: int
    label: str
    role: str
    person_id: str | None
    person: str
    created_at: datetime
    last_used: datetime | None
    expires_at: datetime | None
    revoked: bool


def listing(s: Session) -> list[TokenRow]:
    rows = tokens.list_tokens(s)
    ids = [r.person_id for r, _ in rows if r.person_id]
    names = {p.id: p.name for p in s.exec(select(Person).where(Person.id.in_(ids)))} if ids else {}  # type: ignore[attr-defined]
    return [TokenRow(r.id or 0, r.label, r.role, r.person_id, names.get(r.person_id or "", r.person_id or ""),
                     r.created_at, used, r.expires_at, r.revoked) for r, used in rows]


def _role(role: str) -> str:
    role = (role or "").strip()
    if role not in ROLE_NAMES:
        raise UserError(422, f"角色无效:{role or '(空)'};可选:{'、'.join(n for n, _ in ROLE_NAMES.values())}"
                             f" / role: unknown {role!r}")
    return role


def _record(s: Session, kind: str, actor: str, row: tokens.ApiToken, **extra: Any) -> None:
    tokens.record(s, kind, actor, row, "console", **extra)


def create(s: Session, actor: str, role: str, person_id: str | None, label: str) -> tuple[str, TokenRow]:
    """A new token for `role`, optionally bound to a directory person: (the token, shown once; its row)."""
    role = _role(role)
    person_id = (person_id or "").strip() or None
    label = (label or "").strip()[:200]
    if person_id is not None and s.get(Person, person_id) is None:
        raise UserError(422, f"通讯录中没有此人:{person_id} / person_id: no person {person_id!r} in the directory")
    if not label and person_id is None:
        raise UserError(422, "请填写用途说明或选择人员 / give a label or a person")
    token = tokens.create_token(s, role, person_id, label)
    s.flush()
    row = tokens.lookup_token(s, token)
    assert row is not None
    _record(s, Access.TOKEN_CREATED, actor, row)
    return token, _one(s, row)


def _get(s: Session, token_id: int) -> tokens.ApiToken:
    row = tokens.token_row(s, token_id)
    if row is None:
        raise UserError(404, f"没有编号为 {token_id} 的令牌 / no token {token_id}")
    return row


def change_role(s: Session, actor: str, token_id: int, role: str) -> TokenRow:
    role = _role(role)
    row = _get(s, token_id)
    if row.revoked:
        raise UserError(409, "此令牌已吊销,不能再改角色 / the token is revoked")
    before = row.role
    if before != role:
        tokens.set_role(s, row, role)
        _record(s, Access.TOKEN_ROLE_CHANGED, actor, row, before=before)
    return _one(s, row)


def revoke(s: Session, actor: str, token_id: int) -> TokenRow:
    row = _get(s, token_id)
    if not row.revoked:
        tokens.revoke(s, row)
        _record(s, Access.TOKEN_REVOKED, actor, row)
    return _one(s, row)


def _one(s: Session, row: tokens.ApiToken) -> TokenRow:
    person = s.get(Person, row.person_id) if row.person_id else None
    return TokenRow(row.id or 0, row.label, row.role, row.person_id, person.name if person else (row.person_id or ""),
                    row.created_at, None, row.expires_at, row.revoked)


def people(s: Session, limit: int = 2000) -> list[tuple[str, str]]:
    """Directory persons to bind a token to: (id, name), by name."""
    return [(p.id, p.name) for p in s.exec(select(Person).order_by(Person.name).limit(limit))]


def describe(row: TokenRow, lang: str = "zh") -> str:
    """How a token row reads in a message: its label or person, and its role."""
    return f"{row.person or row.label} · {role_name(row.role, lang)}"
