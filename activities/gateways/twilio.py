"""Twilio: SMS and voice calls through the real SDK (`twilio.rest.Client`).

Setting up an account (environment variables, prefix ``YINGJI_``):

- ``GATEWAY=twilio``, ``TWILIO_ACCOUNT_SID`` (AC…), ``TWILIO_AUTH_TOKEN``, and
  ``TWILIO_FROM_NUMBER``: a Twilio number (E.164) with SMS and voice capability
  that may call the destination country (Console → Messaging/Voice → Geo permissions).
- ``PUBLIC_BASE_URL``: the https origin Twilio reaches the API at (through the reverse
  proxy), e.g. ``https://yingji.example.gov.cn``. Every callback URL is built from it,
  and webhook signatures are checked against it: it must be exactly what Twilio sees.
- On the number (Console → Phone Numbers → the number): "A message comes in" →
  ``POST {PUBLIC_BASE_URL}/api/webhooks/twilio/sms``. Voice needs nothing on the number:
  each call carries its own TwiML URL and status callback.
- Rotating the auth token: put the old one in ``TWILIO_PREVIOUS_AUTH_TOKEN`` and the new
  one in ``TWILIO_AUTH_TOKEN``, restart, promote the secondary token in the Console, and
  drop the previous one after a day (callbacks signed with either are accepted).
- Rate limits: ``RATE_VOICE_PER_S`` (default 1, Twilio's default calls per second per
  account) and ``RATE_SMS_PER_S`` (the number's or messaging service's MPS).
- ``TWILIO_API_BASE`` points the SDK at another API origin (the tests' fake server).

What each send does:

- SMS: ``messages.create`` with a status callback; ``21610`` (the person replied STOP)
  is ``opted_out``, reported like a failure so the escalation moves on, never skipped.
- Voice: ``calls.create`` with answering-machine detection and a TwiML URL; the API
  answers it with ``<Say language="zh-CN">`` and ``<Gather numDigits="1">`` (1 confirm,
  2 cannot respond, 9 repeat) and gets every call progress event.
- HTTP 429 / error 20429 raises ``Throttled``: the outbox waits out a backoff and queues the
  message at the account's rate gate again (activities/delivery/send.py); an answer that never came
  (timeout, 5xx) is settled by asking Twilio whether the message exists, never by sending
  it again blindly. A create whose connection was closed under it (a kept-alive connection the
  server closed as it was reused: no answer, a reset) is sent once more on a new connection when
  Twilio says it holds no such message, as the outbox does after a worker crash (`resend_unknown`).
  SDK calls block, so they run on threads (`PROVIDER_THREADS`), each on a kept-alive connection of its own.
- Proxies: ``HTTPS_PROXY``/``HTTP_PROXY``/``NO_PROXY`` (and ``REQUESTS_CA_BUNDLE``) are read as `requests` reads
  them, once, when the gateway is built (`_http_client`), not on every request.
"""
from __future__ import annotations

import asyncio
import http.client
from datetime import UTC, datetime, timedelta

import requests
from requests.adapters import HTTPAdapter
from sqlmodel import col, select
from twilio.base.exceptions import TwilioException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from activities.gateways.base import PROVIDER_THREADS, OutgoingMessage, SendResult, Throttled, provider_call

WEBHOOKS = "/api/webhooks/twilio"
SMS_STATUS = f"{WEBHOOKS}/sms/status"
VOICE_TWIML = f"{WEBHOOKS}/voice/twiml"
VOICE_STATUS = f"{WEBHOOKS}/voice/status"
CALL_EVENTS = ["initiated", "ringing", "answered", "completed"]
OPTED_OUT, RATE_LIMITED = 21610, 20429
MAX_SMS_CHARS = 1600
CLOCK_SKEW = timedelta(seconds=60)  # between our clock and Twilio's date_created (1 s resolution)
FAILED = {"failed", "undelivered", "canceled", "busy", "no-answer"}


def _int(value: object) -> int | None:
    try:
        return int(value) if value not in (None, "") else None  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return None


def _error_code(exc: Exception) -> int | None:
    return _int(getattr(exc, "code", None))


def _refused(exc: Exception) -> SendResult:
    """Twilio said no: what the message's outcome is."""
    code = _error_code(exc)
    text = f"Twilio {code or getattr(exc, 'status', '?')}: {getattr(exc, 'msg', None) or getattr(exc, 'title', '') or exc}"
    return SendResult(status="opted_out" if code == OPTED_OUT else "failed", error=text[:500])


class TwilioGateway:
    name = "twilio"
    resend_unknown = True  # reconcile's None is Twilio's word that nothing was created: sending is safe

    def __init__(self, settings, *, tries: int = 4, backoff_s: float = 0.5) -> None:
        token = settings.twilio_auth_token.get_secret_value() if settings.twilio_auth_token else None
        if not (settings.twilio_account_sid and token and settings.twilio_from_number):
            raise ValueError("the twilio gateway needs YINGJI_TWILIO_ACCOUNT_SID, _AUTH_TOKEN and _FROM_NUMBER")
        self.account = settings.twilio_account_sid
        self.timeout_s = 20.0  # a request's longest wait for Twilio (the outbox's lease on a row in flight)
        self.client = Client(settings.twilio_account_sid, token)
        if settings.twilio_api_base:  # the Api domain builds every URL from base_url
            self.client.api.base_url = settings.twilio_api_base.rstrip("/")
        self.client.http_client = _http_client(self.client.api.base_url, self.timeout_s)
        self.from_ = settings.twilio_from_number
        self.base_url = settings.base_url
        self.throttle_tries, self.throttle_backoff_s = tries, backoff_s
        self._matched: set[str] = set()  # sids reconcile has given to a message in this process

    def callback(self, path: str, msg: OutgoingMessage) -> str:
        """A webhook URL for this message; the outbox id rides along (signed by Twilio with the URL)."""
        return f"{self.base_url}{path}?o={msg.outbox_id}"

    # ------------------------------------------------------------------ send

    def _create(self, msg: OutgoingMessage) -> str:
        if msg.channel == "voice":
            call = self.client.calls.create(
                to=msg.to, from_=self.from_, url=self.callback(VOICE_TWIML, msg), method="POST",
                status_callback=self.callback(VOICE_STATUS, msg), status_callback_method="POST",
                status_callback_event=CALL_EVENTS, machine_detection="Enable", timeout=40)
            return call.sid
        if msg.channel != "sms":
            raise ValueError(f"twilio sends sms and voice, not {msg.channel!r}")
        message = self.client.messages.create(to=msg.to, from_=self.from_, body=msg.body[:MAX_SMS_CHARS],
                                              status_callback=self.callback(SMS_STATUS, msg))
        return message.sid

    async def send(self, msg: OutgoingMessage, *, again: bool = False) -> SendResult:
        try:
            return SendResult(status="sent", provider_id=await provider_call(self._create, msg))
        except TwilioException as exc:
            status = getattr(exc, "status", None)
            if status == 429 or _error_code(exc) == RATE_LIMITED:
                raise Throttled(_refused(exc).error) from exc  # nothing was created: sending again is safe
            if isinstance(status, int) and status >= 500:
                return await self._settle(msg, f"Twilio HTTP {status}")
            return _refused(exc)
        except requests.ConnectionError as exc:
            if isinstance(exc, requests.exceptions.ConnectTimeout) or "refused" in str(exc).lower():
                return SendResult(status="failed", error=f"Twilio unreachable: {type(exc).__name__}")
            if not again and _closed_under(exc):
                return await self._settle(msg, type(exc).__name__, resend=True)
            return await self._settle(msg, type(exc).__name__)
        except requests.Timeout as exc:
            return await self._settle(msg, type(exc).__name__)

    async def _settle(self, msg: OutgoingMessage, why: str, resend: bool = False) -> SendResult:
        """The request may or may not have reached Twilio: ask, rather than send again blindly. `resend`: the
        connection was closed under the request, so Twilio holding no such message means it never got it: sent
        once more (on a new connection: the closed one left the pool)."""
        try:
            found = await self.reconcile(msg)
        except Exception as exc:  # noqa: BLE001 - reported as the message's outcome
            return SendResult(status="failed", error=f"{why}; and Twilio could not be asked: {type(exc).__name__}")
        if found is None and resend:
            return await self.send(msg, again=True)
        return found or SendResult(status="failed", error=f"{why}; Twilio has no such {msg.channel}")

    # ------------------------------------------------------------------ reconcile

    async def reconcile(self, msg: OutgoingMessage) -> SendResult | None:
        candidates = await asyncio.to_thread(self._candidates, msg)
        taken = await asyncio.to_thread(_recorded_sids, [sid for sid, _, _ in candidates])
        for sid, status, error_code in candidates:  # oldest first: the first one sent is ours
            if sid in taken or sid in self._matched:
                continue
            self._matched.add(sid)
            if status in FAILED:
                return SendResult(status="opted_out" if error_code == OPTED_OUT else "failed", provider_id=sid,
                                  error=f"Twilio {status}" + (f" {error_code}" if error_code else ""))
            return SendResult(status="sent", provider_id=sid)
        return None

    def _candidates(self, msg: OutgoingMessage) -> list[tuple[str, str, int | None]]:
        """What Twilio holds to this number since the message was claimed: (sid, status, error code)."""
        since = (msg.created_at or datetime.now(UTC)) - CLOCK_SKEW
        if msg.channel == "voice":
            found = [(c.date_created, c.sid, c.status, None)
                     for c in self.client.calls.list(to=msg.to, from_=self.from_, limit=50)]
        else:
            body = msg.body[:MAX_SMS_CHARS].strip()
            found = [(m.date_created, m.sid, m.status, m.error_code)
                     for m in self.client.messages.list(to=msg.to, from_=self.from_, limit=50)
                     if (m.body or "").strip() == body]
        found = [f for f in found if isinstance(f[0], datetime) and f[0] >= since]
        return [(sid, str(status), _int(code)) for _, sid, status, code in sorted(found, key=lambda f: f[0])]


def _http_client(api_base: str, timeout_s: float) -> TwilioHttpClient:
    """The SDK's HTTP client, set up once per gateway.

    - The proxies for `api_base` and the CA bundle are taken from the environment here, by requests' own
      `merge_environment_settings`, which the SDK called for every request: it read the whole environment twice
      (the proxies, then whether the host bypasses them), ~a fifth of the CPU of a send through the SDK (issue 25,
      the on-call comparison).
    - A kept-alive connection per provider thread: the SDK's pool keeps `min(32, cores + 4)` connections to
      https (6 on two cores) and requests' default 10 to http, so most of `PROVIDER_THREADS` concurrent sends
      opened a connection (a TLS handshake to Twilio) and threw it away after one request."""
    http = TwilioHttpClient(timeout=timeout_s)
    session = http.session
    assert session is not None  # (pool_connections=True: one session for every request)
    found = session.merge_environment_settings(api_base, {}, None, None, None)
    http.proxy, session.verify, session.trust_env = found["proxies"], found["verify"], False
    for scheme in ("https://", "http://"):
        session.mount(scheme, HTTPAdapter(pool_maxsize=PROVIDER_THREADS))
    return http


def _closed_under(exc: requests.ConnectionError) -> bool:
    """Whether the connection was closed under the request (no answer at all, or reset), as a kept-alive
    connection the server closed is when the client reuses it at that moment: requests wraps urllib3's
    ProtocolError('Connection aborted.', RemoteDisconnected | ConnectionResetError | BrokenPipeError)."""
    causes = [exc, *exc.args]
    causes += [a for c in list(causes) if isinstance(c, BaseException) for a in c.args]
    return any(isinstance(c, (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError)) for c in causes)


def _recorded_sids(sids: list[str]) -> set[str]:
    """Sids the outbox already gives to some message (a call to the same number from another send)."""
    if not sids:
        return set()
    from store.db import session_scope
    from store.messages import OutboxMessage

    with session_scope(write=False) as s:
        return set(s.exec(select(OutboxMessage.provider_id).where(col(OutboxMessage.provider_id).in_(sids))))
