"""Signed acknowledgement links: bound to one person and one subject, expiring, usable once."""
from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from datetime import UTC, datetime

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy import insert
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, delete, select

from store.messages import ShortLink, UsedLink

SALT = "yingji.ack-link"
DEFAULT_MAX_AGE = 48 * 3600


class LinkError(ValueError):
    def __init__(self, reason: str, message: str):
        self.reason = reason
        super().__init__(message)


def _serializer(key: str, salt: str = SALT) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(key, salt=salt)


def make_ack_token(key: str, subject: str, person_id: str, salt: str = SALT) -> str:
    """A one-time link's token: this subject, this person, `j` its one-time id. `salt` keeps one kind of link
    (acknowledgement, response proposal) from being read as another."""
    return _serializer(key, salt).dumps({"s": subject, "p": person_id, "j": secrets.token_urlsafe(9)})


def read_ack_token(key: str, token: str, max_age: int = DEFAULT_MAX_AGE, salt: str = SALT) -> dict:
    try:
        data = _serializer(key, salt).loads(token, max_age=max_age)
    except SignatureExpired as exc:
        raise LinkError("expired", "确认链接已过期 / this link has expired") from exc
    except BadSignature as exc:
        raise LinkError("invalid", "确认链接无效 / this link is not valid") from exc
    if not isinstance(data, dict) or not {"s", "p", "j"} <= data.keys():
        raise LinkError("invalid", "确认链接无效 / this link is not valid")
    return data


def _jti(data: dict) -> str:
    return hashlib.sha256(f"{data['s']}|{data['p']}|{data['j']}".encode()).hexdigest()


def is_used(session: Session, data: dict) -> bool:
    return session.get(UsedLink, _jti(data)) is not None


def _spent(session: Session, jtis: list[str]) -> set[str]:
    """Which of these one-time ids were used: one query."""
    return set(session.exec(select(UsedLink.jti).where(col(UsedLink.jti).in_(sorted(set(jtis))))))


def used_among(session: Session, links: list[dict]) -> list[bool]:
    """`is_used` for many links in one query."""
    jtis = [_jti(d) for d in links]
    used = _spent(session, jtis)
    return [j in used for j in jtis]


def _used_error() -> LinkError:
    return LinkError("used", "确认链接已使用过 / this link has been used already")


def consume(session: Session, data: dict) -> None:
    """Mark a link used; a second use is refused."""
    jti = _jti(data)
    if session.get(UsedLink, jti) is not None:
        raise _used_error()
    try:
        with session.begin_nested():
            session.add(UsedLink(jti=jti))
            session.flush()
    except IntegrityError as exc:
        raise _used_error() from exc


def consume_many(session: Session, links: list[dict]) -> list[LinkError | None]:
    """`consume` for many links in one statement each way (the answers intake's batch): for each, None when it is
    now spent by this call, or the LinkError its use meets (spent before, or earlier in the same list). When
    another process spends one of them meanwhile, the list is spent one by one, each refusal its own."""
    jtis = [_jti(d) for d in links]
    seen = _spent(session, jtis)
    out: list[LinkError | None] = []
    for jti in jtis:
        out.append(_used_error() if jti in seen else None)
        seen.add(jti)
    now = datetime.now(UTC)
    fresh = [{"jti": j, "used_at": now} for j, refused in zip(jtis, out, strict=True) if refused is None]
    if not fresh:
        return out
    try:
        with session.begin_nested():
            session.execute(insert(UsedLink), fresh)
    except IntegrityError:
        return [_one(session, d) for d in links]
    return out


def _one(session: Session, data: dict) -> LinkError | None:
    try:
        consume(session, data)
    except LinkError as exc:
        return exc
    return None


def reply_code(subject: str, person_id: str) -> str:
    """A short code a person can reply with to say which call-out they confirm."""
    return str(int(hashlib.sha256(f"{subject}|{person_id}".encode()).hexdigest(), 16) % 9000 + 1000)


# ------------------------------------------------------------------ short aliases for texts

SHORT_PREFIX = "/a/"
SHORT_TARGETS = ("/ack/", "/confirm/", "/spotcheck/", "/proposal/")
_SHORT_SALT = b"yingji.short-link|"


def _short_mac(key: str, nonce: bytes) -> bytes:
    return hmac.new(key.encode(), _SHORT_SALT + nonce, hashlib.sha256).digest()[:3]


def is_short_code(key: str, code: str) -> bool:
    """Whether `code` is one we made (6 random bytes and 3 of their HMAC, 12 characters): no database, for the
    rate limits; whether it leads anywhere is `resolve_short`'s business (a guess must hit a stored code)."""
    if len(code) != 12:
        return False
    try:
        raw = base64.urlsafe_b64decode(code)
    except (binascii.Error, ValueError):
        return False
    return len(raw) == 9 and hmac.compare_digest(raw[6:], _short_mac(key, raw[:6]))


def new_short_code(key: str) -> str:
    nonce = secrets.token_bytes(6)
    return base64.urlsafe_b64encode(nonce + _short_mac(key, nonce)).decode()


def shorten(session: Session, key: str, base_url: str, links: dict[str, str]) -> dict[str, str]:
    """A short alias (`{base_url}/a/<12 characters>`) of each signed link (by any name), so that a text carrying
    one fits two SMS segments: the signed links are about 150 characters. The alias leads to the same link,
    which checks itself; a link that is not one of ours under `base_url` is kept as it is."""
    out: dict[str, str] = {}
    rows = []
    now = datetime.now(UTC)
    for name, url in links.items():
        path = url.removeprefix(base_url)
        if path == url or not path.startswith(SHORT_TARGETS):
            out[name] = url
            continue
        code = new_short_code(key)
        rows.append({"code": code, "target": path, "created_at": now})
        out[name] = f"{base_url}{SHORT_PREFIX}{code}"
    if rows:  # one multi-row INSERT, not an ORM object per alias (a flush of 500 sends makes 500)
        session.execute(insert(ShortLink.__table__), rows)
    session.flush()
    return out


def prune_short(session: Session, older_than: datetime) -> int:
    """Forget the aliases made before `older_than` (chosen past the longest life of the links they lead to: an
    alias of an expired link leads nowhere anyway). Returns how many were forgotten."""
    result = session.exec(delete(ShortLink).where(col(ShortLink.created_at) < older_than))
    return result.rowcount or 0


def resolve_short(session: Session, key: str, code: str) -> str | None:
    """The path a short alias leads to, or None (not ours, or unknown)."""
    if not is_short_code(key, code):
        return None
    row = session.get(ShortLink, code)
    return row.target if row is not None and row.target.startswith(SHORT_TARGETS) else None
