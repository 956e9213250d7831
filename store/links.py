"""Signed acknowledgement links: bound to one person and one subject, expiring, usable once."""
from __future__ import annotations

import hashlib
import secrets

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from store.messages import UsedLink

SALT = "yingji.ack-link"
DEFAULT_MAX_AGE = 48 * 3600


class LinkError(ValueError):
    def __init__(self, reason: str, message: str):
        self.reason = reason
        super().__init__(message)


def _serializer(key: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(key, salt=SALT)


def make_ack_token(key: str, subject: str, person_id: str) -> str:
    return _serializer(key).dumps({"s": subject, "p": person_id, "j": secrets.token_urlsafe(9)})


def read_ack_token(key: str, token: str, max_age: int = DEFAULT_MAX_AGE) -> dict:
    try:
        data = _serializer(key).loads(token, max_age=max_age)
    except SignatureExpired as exc:
        raise LinkError("expired", "this confirmation link has expired / 确认链接已过期") from exc
    except BadSignature as exc:
        raise LinkError("invalid", "this confirmation link is not valid / 确认链接无效") from exc
    if not isinstance(data, dict) or not {"s", "p", "j"} <= data.keys():
        raise LinkError("invalid", "this confirmation link is not valid / 确认链接无效")
    return data


def _jti(data: dict) -> str:
    return hashlib.sha256(f"{data['s']}|{data['p']}|{data['j']}".encode()).hexdigest()


def is_used(session: Session, data: dict) -> bool:
    return session.get(UsedLink, _jti(data)) is not None


def consume(session: Session, data: dict) -> None:
    """Mark a link used; a second use is refused."""
    jti = _jti(data)
    if session.get(UsedLink, jti) is not None:
        raise LinkError("used", "this confirmation link has been used already / 确认链接已使用过")
    try:
        with session.begin_nested():
            session.add(UsedLink(jti=jti))
            session.flush()
    except IntegrityError as exc:
        raise LinkError("used", "this confirmation link has been used already / 确认链接已使用过") from exc


def reply_code(subject: str, person_id: str) -> str:
    """A short code a person can reply with to say which call-out they confirm."""
    return str(int(hashlib.sha256(f"{subject}|{person_id}".encode()).hexdigest(), 16) % 9000 + 1000)
