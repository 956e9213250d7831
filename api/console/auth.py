"""Console sessions, CSRF and login by one-time SMS code.

A session is a signed cookie (itsdangerous, httponly, SameSite=Strict) that carries a random
session id, kept server-side (`store.console.ConsoleSession`, as a hash): logging out ends
it, whatever happens to the cookie. It names how the user logged in: the API token's row id
(checked on every request, so revoking the token ends the session), the admin token, or a
person who logged in by SMS code, whose role is read from the duty roster (and their tokens)
on every request: the session's role follows the roster, and ends when the person no longer
has one. The cookie carries a random CSRF token that every form and htmx request sends back.

Login codes: 6 digits, stored as an HMAC under the deployment's secret key, valid for 5
minutes, once, with 5 tries, and only in the browser that asked for it (the code is bound to
the login form's cookie). The answer to "send me a code" is the same, at the same speed, for
a number that may log in, an unknown one and one over its cap (the work happens after the
answer); only the per-client limit of every login POST (`api/security.py`) answers 429.
The caps per number: one code every 30 seconds per browser, 12 per hour per person. Why
these and not "3 per 15 minutes, a new code replaces the old ones": there someone else's
three requests locked the person out and each spent the person's own code. Here another
browser's request neither replaces nor spends the person's code (its wrong guesses count
against its own codes), and locking someone out takes 12 requests an hour, every hour,
each of which the person receives as an SMS. The hourly cap bounds guessing: at most
12 × 5 guesses an hour against a 6-digit code.

The code goes out as an SMS through the configured gateway: the API writes the outbox row
and hands it to the gateway adapter itself, because a person is waiting at the login form,
nothing durable follows, and a workflow would keep the code in its history for the
namespace's retention. (The adapter is a transport, not a Temporal activity; no activity
is executed.) The outbox row never holds the code, whatever the gateway; with the simulator
and `YINGJI_SIMULATOR_SHOW_CODES` (set by `yingji run`) the code is printed to the API's
terminal, which stands for the demo persons' phones.
"""
from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Depends, HTTPException, Request
from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlmodel import Session, col, select

from api.deps import Caller
from config import Settings, get_settings
from definitions.schema.templates import LOGIN_CODE
from store.auth import ApiToken, lookup_token, same_secret
from store.console import ConsoleSession, LoginCode
from store.db import session_scope
from store.directory import Person, PhoneError, mask_mobile, normalize_mobile
from store.messages import OutboxMessage
from store.roster import on_duty

COOKIE = "yj_console"
LOGIN_CSRF_COOKIE = "yj_login_csrf"
SESSION_MAX_AGE = 12 * 3600
CODE_TTL = timedelta(minutes=5)
CODE_TRIES = 5
CODES_PER_WINDOW, CODE_WINDOW = 12, timedelta(hours=1)  # per person, from any browser
CODE_GAP = timedelta(seconds=30)  # per person and browser
ROLE_ORDER = ("admin", "supervisor", "leading_leader", "duty_chief", "commander", "duty_cadre", "duty_staff")


@dataclass(frozen=True)
class ConsoleUser:
    role: str
    person_id: str | None
    label: str
    csrf: str
    method: str  # token | admin | sms
    name: str = ""

    @property
    def caller(self) -> Caller:
        return Caller(role=self.role, person_id=self.person_id, label=f"console:{self.label}")

    def may(self, *roles: str) -> bool:
        return self.role == "admin" or self.role in roles


def _serializer(settings: Settings) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(settings.signing_key(), salt="yingji.console-session")


def _admin_fingerprint(settings: Settings) -> str:
    secret = settings.admin_token.get_secret_value() if settings.admin_token else ""
    return hashlib.sha256(secret.encode()).hexdigest()[:16]


def _session_key(secret: str) -> str:
    return hashlib.sha256(f"console-session|{secret}".encode()).hexdigest()


def session_cookie(settings: Settings, data: dict[str, Any]) -> str:
    """Start a session (stored server-side) and return its cookie value."""
    now = datetime.now(UTC)
    secret = secrets.token_urlsafe(32)
    with session_scope() as s:
        s.add(ConsoleSession(id=_session_key(secret), method=data.get("m", "?"), person_id=data.get("p"),
                             token_id=data.get("t"), created_at=now, expires_at=now + timedelta(seconds=SESSION_MAX_AGE)))
        for old in s.exec(select(ConsoleSession).where(ConsoleSession.expires_at < now - timedelta(days=1)).limit(500)):
            s.delete(old)
    return _serializer(settings).dumps({**data, "s": secret, "c": secrets.token_urlsafe(24)})


def set_session(response, request: Request, value: str) -> None:
    response.set_cookie(COOKIE, value, max_age=SESSION_MAX_AGE, httponly=True, samesite="strict",
                        secure=request.url.scheme == "https", path="/")


def cookie_data(request: Request) -> dict[str, Any] | None:
    """The session cookie's signed content (not checked against the store)."""
    raw = request.cookies.get(COOKIE)
    if not raw:
        return None
    try:
        data = _serializer(get_settings()).loads(raw, max_age=SESSION_MAX_AGE)
    except BadSignature:
        return None
    return data if isinstance(data, dict) and isinstance(data.get("s"), str) and isinstance(data.get("c"), str) else None


def end_session(data: dict[str, Any]) -> None:
    """Log out: the session ends server-side; its cookie no longer works anywhere."""
    with session_scope() as s:
        row = s.get(ConsoleSession, _session_key(data["s"]))
        if row is not None and row.ended_at is None:
            row.ended_at = datetime.now(UTC)


def read_session(request: Request) -> ConsoleUser | None:
    data = cookie_data(request)
    if data is None:
        return None
    settings = get_settings()
    now = datetime.now(UTC)
    method = data.get("m")
    with session_scope(write=False) as s:
        stored = s.get(ConsoleSession, _session_key(data["s"]))
        if stored is None or stored.ended_at is not None or stored.expires_at <= now or stored.method != method:
            return None
        if method == "admin":
            if not settings.admin_token or data.get("f") != _admin_fingerprint(settings):
                return None
            return ConsoleUser("admin", None, "admin-token", data["c"], "admin", "admin")
        if method == "token":
            row = s.get(ApiToken, data.get("t"))
            if row is None or row.revoked or (row.expires_at and row.expires_at <= now):
                return None
            name = (p.name if row.person_id and (p := s.get(Person, row.person_id)) else row.label)
            return ConsoleUser(row.role, row.person_id, row.label or row.role, data["c"], "token", name or row.role)
        if method == "sms":
            person = s.get(Person, data.get("p"))
            role = console_role(s, person.id, now) if person is not None else None
            if person is None or role is None:  # off the roster (and no token): the session is over
                return None
            return ConsoleUser(role, person.id, person.id, data["c"], "sms", person.name)
    return None


def login_with_token(settings: Settings, token: str) -> dict[str, Any] | None:
    """The session data for a bearer token, or None if it is not valid."""
    token = token.strip()
    if not token:
        return None
    if settings.admin_token and same_secret(token, settings.admin_token.get_secret_value()):
        return {"m": "admin", "f": _admin_fingerprint(settings)}
    with session_scope(write=False) as s:
        row = lookup_token(s, token)
        return {"m": "token", "t": row.id} if row is not None else None


# ------------------------------------------------------------------ CSRF


def new_login_csrf() -> str:
    return secrets.token_urlsafe(24)


async def check_csrf(request: Request, expected: str | None) -> None:
    sent = request.headers.get("x-csrf-token")
    if sent is None:
        form = await request.form()
        sent = form.get("csrf")  # type: ignore[assignment]
    if not expected or not isinstance(sent, str) or not hmac.compare_digest(sent, expected):
        raise HTTPException(403, detail="CSRF token missing or wrong; reload the page / 页面已过期,请刷新")


# ------------------------------------------------------------------ the current user


def _login_redirect(request: Request) -> HTTPException:
    target = "/console/login"
    if request.headers.get("hx-request"):
        return HTTPException(401, detail="log in first", headers={"HX-Redirect": target})
    nxt = quote(request.url.path + (f"?{request.url.query}" if request.url.query else ""), safe="/")
    return HTTPException(303, detail="log in first", headers={"Location": f"{target}?next={nxt}"})


def console_user(request: Request) -> ConsoleUser:
    user = read_session(request)
    if user is None:
        raise _login_redirect(request)
    request.state.console_user = user
    return user


async def console_user_csrf(request: Request, user: Annotated[ConsoleUser, Depends(console_user)]) -> ConsoleUser:
    await check_csrf(request, user.csrf)
    return user


async def leaving(request: Request) -> dict[str, Any]:
    """For logout: the session's cookie with its CSRF token checked, whether or not it still works."""
    data = cookie_data(request)
    if data is None:
        raise _login_redirect(request)
    await check_csrf(request, data["c"])
    return data


Viewer = Annotated[ConsoleUser, Depends(console_user)]
Poster = Annotated[ConsoleUser, Depends(console_user_csrf)]
Leaving = Annotated[dict, Depends(leaving)]


# ------------------------------------------------------------------ SMS codes


class CodeError(ValueError):
    def __init__(self, reason: str):
        self.reason = reason  # bad_code | too_many
        super().__init__(reason)


def login_code_text(code: str) -> str:
    """The login code SMS (Chinese only; one segment)."""
    return f"【应急值守】登录验证码 {code},5分钟内有效,请勿告诉他人。"


def _code_hash(settings: Settings, person_id: str, code: str) -> str:
    key = settings.signing_key().encode()
    return hmac.new(key, f"login|{person_id}|{code}".encode(), hashlib.sha256).hexdigest()


def console_role(s: Session, person_id: str, at: datetime) -> str | None:
    """What a person may do in the console: their API token's role, else their duty role now."""
    roles = {t.role for t in s.exec(select(ApiToken).where(ApiToken.person_id == person_id, ApiToken.revoked == False))  # noqa: E712
             if not (t.expires_at and t.expires_at <= at)}
    roles |= {shift.role for shift in on_duty(s, at) if shift.person_id == person_id}
    return next((r for r in ROLE_ORDER if r in roles), None)


def client_hash(login_cookie: str | None) -> str:
    """Which browser asked: a hash of its login form's cookie (the CSRF check proved it holds it)."""
    return hashlib.sha256(f"login-client|{login_cookie or ''}".encode()).hexdigest()


@dataclass
class CodeRequest:
    person_id: str
    mobile: str
    body: str
    outbox_id: int
    code_id: int
    name: str = ""
    code: str = ""


def create_code(settings: Settings, mobile: str, client: str, now: datetime | None = None) -> CodeRequest | None:
    """Store a new code for the person with this mobile, for the browser `client` (`client_hash`),
    and its outbox row. None if nobody may log in with this number, or it is over its caps:
    the caller answers the same either way."""
    now = now or datetime.now(UTC)
    try:
        e164 = normalize_mobile(mobile)
    except PhoneError:
        return None
    with session_scope() as s:
        person = s.exec(select(Person).where(Person.mobile == e164)).first()
        if person is None or console_role(s, person.id, now) is None:
            return None
        recent = list(s.exec(select(LoginCode).where(LoginCode.person_id == person.id,
                                                     LoginCode.created_at > now - CODE_WINDOW)))
        mine = [c for c in recent if c.client_hash == client]
        if len(recent) >= CODES_PER_WINDOW or any(c.created_at > now - CODE_GAP for c in mine):
            return None
        for old in mine:  # this browser asked again: its newest code is the one
            old.used_at = old.used_at or now
        code = f"{secrets.randbelow(10**6):06d}"
        row = LoginCode(person_id=person.id, code_hash=_code_hash(settings, person.id, code),
                        created_at=now, expires_at=now + CODE_TTL, client_hash=client)
        s.add(row)
        s.flush()
        text = login_code_text(code)
        msg = OutboxMessage(idempotency_key=f"console-login/{row.id}", gateway=settings.sms_gateway, channel="sms", to=e164,
                            person_id=person.id, subject="console-login", body=text.replace(code, "******"),
                            status="sending", created_at=now, meta={"purpose": "login_code"})
        s.add(msg)
        s.flush()
        row.outbox_id = msg.id
        return CodeRequest(person.id, e164, text, msg.id, row.id, person.name, code)  # type: ignore[arg-type]


async def send_code(settings: Settings, mobile: str, client: str) -> bool:
    """Create and send a login code. Returns whether one was sent (the caller says the same either way,
    and runs this after answering)."""
    import asyncio

    from activities.gateways import (  # the transport adapter; see the module docstring
        OutgoingMessage,
        gateway_for,
    )

    req = await asyncio.to_thread(create_code, settings, mobile, client)
    if req is None:
        return False
    gateway = gateway_for("sms")
    msg = OutgoingMessage(outbox_id=req.outbox_id, idempotency_key=f"console-login/{req.code_id}", channel="sms",
                          to=req.mobile, body=req.body, kind=LOGIN_CODE, values={"code": req.code})
    try:
        result = await gateway.send(msg)
        status, provider_id, error = result.status, result.provider_id, result.error
    except Exception as exc:  # the person sees "try again"; the row says why
        status, provider_id, error = "failed", None, f"{type(exc).__name__}: {exc}"[:500]
    if status == "sent" and settings.sms_gateway == "simulator" and settings.simulator_show_codes:
        # the terminal of `yingji run` is the demo persons' phone (print, not a log record: logs mask codes)
        print(f"[模拟短信 simulator SMS] → {req.name} {mask_mobile(req.mobile)}: {req.body}", flush=True)
    if status == "sent" and settings.sms_gateway == "simulator":  # the demo's login page shows it (demo only)
        from api.services.demo_logins import remember_code

        remember_code(settings, client, req.name, req.code, datetime.now(UTC))

    def record() -> None:
        with session_scope() as s:
            row = s.get(OutboxMessage, req.outbox_id)
            if row is not None:
                row.status, row.provider_id, row.error = status, provider_id, error
                row.sent_at = datetime.now(UTC) if status == "sent" else None
                row.updated_at = datetime.now(UTC)

    await asyncio.to_thread(record)
    return status == "sent"


def verify_code(settings: Settings, mobile: str, code: str, client: str, now: datetime | None = None) -> dict[str, Any]:
    """Spend a code sent to this browser (`client`); returns the session data. Raises CodeError."""
    now = now or datetime.now(UTC)
    code = code.strip()
    try:
        e164 = normalize_mobile(mobile)
    except PhoneError as exc:
        raise CodeError("bad_code") from exc
    with session_scope() as s:
        person = s.exec(select(Person).where(Person.mobile == e164)).first()
        if person is None:
            raise CodeError("bad_code")
        row = s.exec(select(LoginCode).where(LoginCode.person_id == person.id, LoginCode.client_hash == client,
                                             col(LoginCode.used_at).is_(None), LoginCode.expires_at > now)
                     .order_by(col(LoginCode.id).desc())).first()
        if row is None or row.attempts >= CODE_TRIES:
            raise CodeError("bad_code")
        if not (len(code) == 6 and code.isdigit()
                and hmac.compare_digest(row.code_hash, _code_hash(settings, person.id, code))):
            row.attempts += 1
            if row.attempts >= CODE_TRIES:
                row.used_at = now  # spent by guessing
            s.commit()
            raise CodeError("bad_code")
        row.used_at = now
        role = console_role(s, person.id, now)
        if role is None:
            raise CodeError("bad_code")
        return {"m": "sms", "p": person.id, "r": role}
