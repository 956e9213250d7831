"""What every HTTP request passes through before a route sees it, and what logs may not show.

`SecurityMiddleware` (pure ASGI, installed by `api.app.create_app`):

- **Body limits.** A request body larger than its route's limit is refused with 413 before
  the route reads it: by `Content-Length` at once, and by counting the bytes of a chunked
  body as they arrive. Gateway webhooks take 64 kB, signed links and console
  logins 16 kB, everything else `YINGJI_MAX_BODY_BYTES` (2 MB; CAP documents have their
  own 1 MB limit in `api/cap`).
- **Finite numbers.** A JSON body (or one without a content type, which some routes read as
  JSON) that holds NaN, Infinity or -Infinity, or a number too large for a float (json.loads
  reads 1e400 as Infinity), is refused with 422 naming the field, before any route stores it:
  they are not JSON numbers, PostgreSQL's JSON type refuses them and SQLite stores them, and
  pydantic's float fields and free-form dicts take them. Checked as the body arrives, like the
  limits; a body with nothing that could be one (no `NaN`, `Infinity`, exponent or 300 digits
  in a row) is not parsed here.
- **Rate limits** (a token bucket each). Console logins (`POST /console/login/…`: token,
  SMS code request, code check) per client address. Signed one-time links (`/ack/…`,
  `/confirm/…`, `/spotcheck/…`, `/proposal/…`, and their short aliases `/a/…`) per link when its signature is ours (a link is bound to one
  person and works once: a hundred persons behind one carrier NAT or one reverse proxy must
  all get through, and one link hammered is still limited), and per client address when it
  is not (guessing). Over the limit: 429 with `Retry-After`. The gateway webhooks are not
  limited here (every one is signed, and a 10,000-person call-out's status callbacks come
  in bursts); bearer tokens are 256-bit random, not guessable at any rate. The client
  address is the socket's unless the peer is one of `YINGJI_TRUSTED_PROXIES` (then uvicorn
  takes it from `X-Forwarded-For`; see `cli/main.py` and docs/reverse-proxy.md).
- **Security headers** on every response: `X-Content-Type-Options: nosniff`,
  `X-Frame-Options: DENY`, `Referrer-Policy: no-referrer` (an acknowledgement link's token
  never leaves in a Referer), a `Content-Security-Policy` that allows nothing from another
  origin (the console vendors htmx; the OpenAPI pages, which FastAPI serves from a CDN,
  get none), `Permissions-Policy`, `Cross-Origin-Opener-Policy`, `Cache-Control: no-store`
  on API answers and acknowledgement pages, and `Strict-Transport-Security` over https.

`mask_text` and the logging hooks keep phone numbers, bearer tokens, signed links and
configured secrets out of the logs (stdlib logging, uvicorn's access log, structlog);
`masked_message` keeps one-time links and login codes out of every view of the outbox.
"""
from __future__ import annotations

import hashlib
import json
import logging
import math
import re
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

from starlette.exceptions import HTTPException

from store.redact import LINK_PREFIXES, ONE_TIME_LINK, mask_text
from store.types import non_finite

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

WEBHOOK_MAX_BYTES = 64_000
SMALL_MAX_BYTES = 16_000
CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
       "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
       "frame-ancestors 'none'")
DOC_PATHS = ("/docs", "/redoc")  # FastAPI's Swagger UI and ReDoc load their scripts from a CDN
BASE_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=(), payment=()"),
    (b"cross-origin-opener-policy", b"same-origin"),
]


# ------------------------------------------------------------------ rate limits


@dataclass
class Bucket:
    tokens: float
    at: float


class TokenBuckets:
    """Token buckets per key: `rate` tokens per second, at most `burst` saved up.

    Memory is bounded: full buckets carry no information and are dropped when the table
    grows past `max_keys`."""

    def __init__(self, rate_per_s: float, burst: int, max_keys: int = 50_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.rate, self.burst, self.max_keys, self.clock = rate_per_s, burst, max_keys, clock
        self.buckets: dict[str, Bucket] = {}

    def take(self, key: str) -> float:
        """Spend one token for `key`: 0.0 if allowed, else the seconds until one is available."""
        now = self.clock()
        b = self.buckets.get(key)
        if b is None:
            if len(self.buckets) >= self.max_keys:
                self._prune(now)
            b = self.buckets[key] = Bucket(float(self.burst), now)
        b.tokens = min(float(self.burst), b.tokens + (now - b.at) * self.rate)
        b.at = now
        if b.tokens >= 1.0:
            b.tokens -= 1.0
            return 0.0
        return (1.0 - b.tokens) / self.rate

    def _prune(self, now: float) -> None:
        full = [k for k, b in self.buckets.items() if b.tokens + (now - b.at) * self.rate >= self.burst]
        for k in full:
            del self.buckets[k]
        if len(self.buckets) >= self.max_keys:  # everyone is busy: forget the oldest half
            for k in sorted(self.buckets, key=lambda k: self.buckets[k].at)[: self.max_keys // 2]:
                del self.buckets[k]


@dataclass(frozen=True)
class Limit:
    name: str
    methods: tuple[str, ...]
    prefix: str
    buckets: TokenBuckets


def limits_from(settings) -> list[Limit]:
    login = max(settings.rate_login_per_min, 1)
    return [Limit("login", ("POST",), "/console/login/", TokenBuckets(login / 60, login))]


def _link_salts() -> dict[str, str]:
    from store.duty import CONFIRM_SALT, FORM_SALT
    from store.links import SALT
    from store.proposals import LINK_SALT

    return {"/ack/": SALT, "/confirm/": CONFIRM_SALT, "/spotcheck/": FORM_SALT, "/proposal/": LINK_SALT,
            "/a/": ""}  # /a/: short aliases


class LinkLimits:
    """The limit of a signed one-time link: per link when the signature is ours, else per client.

    Checking the signature is one HMAC (no database); its age and whether it was used are the
    route's business. A link's bucket is keyed by a hash of its token, so memory stays bounded
    by what we signed."""

    def __init__(self, settings) -> None:
        per_link = max(settings.rate_link_per_token_per_min, 1)
        guesses = max(settings.rate_ack_per_min, 1)
        self.per_link = TokenBuckets(per_link / 60, per_link)
        self.per_client = TokenBuckets(guesses / 60, guesses)
        self.salts = _link_salts()

    def take(self, path: str, client: str) -> float:
        prefix = next(p for p in LINK_PREFIXES if path.startswith(p))
        token = path[len(prefix):]
        if token and self._ours(self.salts[prefix], token):
            return self.per_link.take(prefix + hashlib.sha256(token.encode()).hexdigest()[:32])
        return self.per_client.take(client)

    @staticmethod
    def _ours(salt: str, token: str) -> bool:
        from itsdangerous import BadSignature, URLSafeTimedSerializer

        from config import get_settings
        from store.links import is_short_code

        if len(token) > 2000:
            return False
        if not salt:  # a short alias: 6 random bytes and 3 of their HMAC
            return is_short_code(get_settings().signing_key(), token)
        try:
            URLSafeTimedSerializer(get_settings().signing_key(), salt=salt).loads(token)  # no max_age: any age
        except (BadSignature, ValueError, UnicodeError):
            return False
        return True


# ------------------------------------------------------------------ the middleware


class BodyTooLarge(HTTPException):
    """Raised from `receive` when a body outgrows its limit; an HTTPException, so that FastAPI's
    body parsing passes it on (it turns other errors into 400) and the app answers 413."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, detail=f"request body larger than {limit} bytes")


class NonFiniteNumber(HTTPException):
    """Raised from `receive` when a JSON body holds NaN or ±Infinity: an HTTPException, so that FastAPI's body
    parsing passes it on (as BodyTooLarge) and the app answers 422 naming the field."""

    def __init__(self, where: str, value: float) -> None:
        shown = "NaN" if value != value else \
            f"{'' if value > 0 else '-'}Infinity or a number too large for a float"  # json.loads reads 1e400 so
        super().__init__(422, detail=f"{where or 'body'}: Input should be a finite number ({shown} is not a JSON "
                                     "number)")


# what a float that is not finite can be written as: NaN, Infinity, an exponent, or more digits than a float holds
_MAYBE_NOT_FINITE = re.compile(rb"NaN|Infinity|[0-9][eE]|[0-9]{300}")


def check_json_numbers(body: bytes) -> None:
    """NonFiniteNumber if `body` is JSON holding a NaN or ±Infinity; a body that is not JSON is the route's to refuse."""
    if not _MAYBE_NOT_FINITE.search(body):
        return
    try:
        found = non_finite(json.loads(body))
    except (ValueError, RecursionError):
        return
    if found is not None:
        raise NonFiniteNumber(*found)


def _json_body(scope: Scope) -> bool:
    """Whether a request's body is JSON, or may be read as JSON (no content type)."""
    ctype = (_header(scope, b"content-type") or "").split(";")[0].strip().lower()
    return not ctype or ctype == "application/json" or (ctype.startswith("application/") and ctype.endswith("+json"))


def body_limit(path: str, default: int) -> int:
    if path.startswith("/api/webhooks/"):
        return WEBHOOK_MAX_BYTES
    if path.startswith((*LINK_PREFIXES, "/console/login")):
        return SMALL_MAX_BYTES
    return default


class SecurityMiddleware:
    def __init__(self, app: ASGIApp, settings) -> None:
        self.app = app
        self.max_body = settings.max_body_bytes
        self.limits = limits_from(settings)
        self.links = LinkLimits(settings)
        self.https = (settings.public_base_url or "").startswith("https://")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")
        headers = self._headers_for(scope, path)
        html = path.startswith((*LINK_PREFIXES, "/console/"))

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {k.lower() for k, _ in message.get("headers", [])}
                message["headers"] = [*message.get("headers", []), *((k, v) for k, v in headers if k not in present)]
            await send(message)

        client = (scope.get("client") or ("?", 0))[0]
        wait = 0.0
        if path.startswith(LINK_PREFIXES) and scope["method"] in ("GET", "POST"):
            wait = self.links.take(path, client)
        for limit in self.limits:
            if not wait and scope["method"] in limit.methods and path.startswith(limit.prefix):
                wait = limit.buckets.take(client)
        if wait:
            await _refuse(send_with_headers, 429, "请求过于频繁,请稍后再试 / Too many requests; try again shortly",
                          [(b"retry-after", str(math.ceil(wait)).encode())], html=html)
            return

        limit_bytes = body_limit(path, self.max_body)
        length = _header(scope, b"content-length")
        if length is not None and (not length.isdigit() or int(length) > limit_bytes):
            status = 413 if length.isdigit() else 400
            await _refuse(send_with_headers, status, f"request body larger than {limit_bytes} bytes"
                          if status == 413 else "Content-Length is not a number", html=html)
            return

        received = 0
        started = False
        chunks: list[bytes] | None = [] if scope["method"] not in ("GET", "HEAD") and _json_body(scope) else None

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                chunk = message.get("body", b"")
                received += len(chunk)
                if received > limit_bytes:
                    raise BodyTooLarge(limit_bytes)
                if chunks is not None:
                    chunks.append(chunk)
                    if not message.get("more_body"):
                        check_json_numbers(chunks[0] if len(chunks) == 1 else b"".join(chunks))
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send_with_headers(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except BodyTooLarge:
            if not started:
                await _refuse(send_with_headers, 413, f"request body larger than {limit_bytes} bytes", html=html)

    def _headers_for(self, scope: Scope, path: str) -> list[tuple[bytes, bytes]]:
        headers = list(BASE_HEADERS)
        if not path.startswith(DOC_PATHS):
            headers.append((b"content-security-policy", CSP.encode()))
        if path.startswith(("/api/", *LINK_PREFIXES)):
            headers.append((b"cache-control", b"no-store"))
        if self.https or scope.get("scheme") == "https":
            headers.append((b"strict-transport-security", b"max-age=31536000; includeSubDomains"))
        return headers


def _header(scope: Scope, name: bytes) -> str | None:
    for k, v in scope.get("headers", []):
        if k.lower() == name:
            return v.decode("latin-1").strip()
    return None


PAGE = ('<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1"><title>{title}</title>'
        '<link rel="stylesheet" href="/console/static/console.css"></head>'
        '<body><main><div class="card"><p class="alert" role="alert">{detail}</p></div></main></body></html>')


async def _refuse(send: Send, status: int, detail: str, extra: Iterable[tuple[bytes, bytes]] = (),
                  html: bool = False) -> None:
    """A refusal: JSON for the API, a small page for what people open in a browser (links, the console)."""
    if html:
        from html import escape

        body = PAGE.format(title=status, detail=escape(detail)).encode()
        ctype = b"text/html; charset=utf-8"
    else:
        body = json.dumps({"detail": detail}, ensure_ascii=False).encode()
        ctype = b"application/json"
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", ctype), (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close"), *extra]})
    await send({"type": "http.response.body", "body": body})


# ------------------------------------------------------------------ what logs may not show

_LOGIN_CODE = re.compile(r"(?<!\d)\d{6}(?!\d)")


def masked_message(text: str | None, purpose: str | None = None) -> str | None:
    """A message body or link as anyone but its recipient may see it, whatever the gateway: the
    token of a signed one-time link (acknowledgement, contact confirmation, 六问 form) answers in
    its person's name, and a login code logs in as them, so both are masked for every role.
    Only the person it was sent to sees it whole (their phone; with the simulator, the
    console's "my phone" page)."""
    if not text:
        return text
    text = ONE_TIME_LINK.sub(r"\1********", text)
    if purpose == "login_code":
        text = _LOGIN_CODE.sub("******", text)
    return text


def hide_ack_links(text: str | None, settings=None) -> str | None:
    """The old name of `masked_message` (links only); the gateway no longer matters."""
    return masked_message(text)


def configured_secrets() -> list[str]:
    from config import get_settings

    s = get_settings()
    out = []
    for value in (s.admin_token, s.twilio_auth_token, s.twilio_previous_auth_token, s.im_webhook_secret, s.secret_key):
        if value is not None and value.get_secret_value():
            out.append(value.get_secret_value())
    return out


_masking: dict[str, Any] = {"secrets": [], "installed": False}


def install_log_masking(secrets: Iterable[str] | None = None) -> None:
    """Mask every stdlib log record as it is created (any logger: uvicorn's access log, temporalio,
    httpx, twilio, ours): its message and its traceback go through `mask_text`. Idempotent; a
    later call replaces the secrets."""
    _masking["secrets"] = configured_secrets() if secrets is None else list(secrets)
    if _masking["installed"]:
        return
    _masking["installed"] = True
    make = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = make(*args, **kwargs)
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a broken format string is the caller's; leave it
            return record
        record.msg, record.args = mask_text(message, _masking["secrets"]), None
        if record.exc_info and record.exc_info[1] is not None:
            import traceback

            record.exc_text = mask_text("".join(traceback.format_exception(*record.exc_info)).rstrip("\n"),
                                        _masking["secrets"])
        return record

    logging.setLogRecordFactory(factory)


def structlog_masker(secrets: Iterable[str] | None = None):
    """A structlog processor: every string value of the event dict through `mask_text`."""
    fixed = None if secrets is None else list(secrets)

    def process(_logger, _name, event: dict) -> dict:
        found = fixed if fixed is not None else _masking["secrets"]
        return {k: mask_text(v, found) if isinstance(v, str) else v for k, v in event.items()}

    return process
