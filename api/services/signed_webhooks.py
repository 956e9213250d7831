"""One check for the platforms that sign their webhooks with a shared secret (HMAC-SHA256, a timestamp, a replay
window): the broadcast platform's receipts (api/routes/webhooks.py) and the hotline platform's tickets and
satisfaction answers (api/routes/webhooks_hotline.py). Each platform signs its own way (`sign`); the refusals,
the window and the replay memory (store/webhooks.py) are the same. Twilio has its own scheme (its SDK)."""
from __future__ import annotations

import asyncio
import hmac
import time
from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from activities.gateways.hmac_scheme import HmacScheme
from api.services.errors import ServiceError
from store.db import session_scope
from store.webhooks import WebhookNonce, nonce_fresh


class Unsigned(ServiceError):
    """A platform's request without a valid signature, outside the window, or replayed: 403, nothing taken."""


@dataclass(frozen=True)
class Platform:
    name: str  # the key prefix in the replay memory, and the log's word
    scheme: HmacScheme  # how it signs (activities/gateways/hmac_scheme.py)
    secret_setting: str  # the setting to name when no secret is configured

    @property
    def ts_header(self) -> str:
        return self.scheme.ts_header

    @property
    def sig_header(self) -> str:
        return self.scheme.sig_header


def check(platform: Platform, secret: str, timestamp: str | None, signature: str | None, body: bytes,
          window_s: int, now: float | None = None) -> str:
    """The request's signature (lower case) when it is signed with `secret` within the window; else Unsigned."""
    if not secret:
        raise Unsigned(403, f"the {platform.name} webhook is not configured ({platform.secret_setting})")
    if not timestamp or not signature:
        raise Unsigned(403, f"unsigned: {platform.ts_header} and {platform.sig_header} are required")
    if not timestamp.isdigit() or len(timestamp) > 12:
        raise Unsigned(403, f"{platform.ts_header}: seconds since the epoch")
    if abs((time.time() if now is None else now) - int(timestamp)) > window_s:
        raise Unsigned(403, f"{platform.ts_header} is outside the {window_s} s window (replayed or late)")
    sig = signature.strip().lower()
    if not hmac.compare_digest(platform.scheme.sign(secret, timestamp, body), sig):
        raise Unsigned(403, f"invalid {platform.sig_header}: the signature does not match the body")
    return sig


def seen(platform: Platform, signature: str) -> bool:
    with session_scope(write=False) as s:
        return s.get(WebhookNonce, f"{platform.name}:{signature}") is not None


def take(s: Session, platform: Platform, signature: str, window_s: int) -> None:
    """Take a checked signature once, in the caller's transaction (with what the request records); a replay is
    Unsigned (403)."""
    if not nonce_fresh(s, f"{platform.name}:{signature}", window_s):
        raise Unsigned(403, "replayed: this signed request was taken already")


def remember(platform: Platform, signature: str, window_s: int) -> None:
    """Take a signature once its request was acted on (its own transaction): a request that failed (Temporal
    down: 503) is not remembered, so the platform's retry of the same signed request goes through; one taken
    twice at once was idempotent anyway (a ticket is one work order)."""
    try:
        with session_scope() as s:
            nonce_fresh(s, f"{platform.name}:{signature}", window_s)
    except IntegrityError:
        pass


async def verify(platform: Platform, secret: str, timestamp: str | None, signature: str | None, body: bytes,
                 window_s: int) -> str:
    """check(), and refuse a signature taken before: the request's signature, to remember() once acted on."""
    sig = check(platform, secret, timestamp, signature, body, window_s)
    if await asyncio.to_thread(seen, platform, sig):
        raise Unsigned(403, "replayed: this signed request was taken already")
    return sig
