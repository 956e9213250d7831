"""应急广播: the district's IP broadcast platform (loudspeaker terminals in towns and villages).

Not a person channel: a broadcast goes to areas, and the platform's terminals there play its text (TTS).
``YINGJI_BROADCAST_GATEWAY`` chooses ``simulator`` (the default: answers at once and "plays" locally, with a
receipt) or ``http`` (the platform at ``YINGJI_BROADCAST_URL``; docs/gateways.md).

The HTTP protocol, JSON both ways, every request signed with the shared secret ``YINGJI_BROADCAST_SECRET``:

- ``POST {url}/broadcasts`` with ``{request_id, areas, text, repeat, level, drill}``: the platform answers at
  once with ``{task_id, status}``. ``request_id`` is the idempotency key (the platform plays one request once).
- ``GET {url}/broadcasts?request_id=…``: the task the platform holds for that request, ``404`` if none.
- headers ``X-Broadcast-Timestamp`` (unix seconds) and ``X-Broadcast-Signature`` = hex HMAC-SHA256 of the
  timestamp followed by the body's bytes (an empty body for a GET). The platform signs its receipts the same
  way (api/routes/webhooks.py, ``POST /api/webhooks/broadcast``).

A retried activity never plays twice: before posting, the gateway asks the platform for the task by
``request_id`` whenever an earlier try may have reached it (a later attempt, or an answer lost in this one),
as the Twilio gateway asks what it holds before sending again.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

import httpx

from activities.gateways.hmac_scheme import BROADCAST

TS_HEADER, SIG_HEADER = BROADCAST.ts_header, BROADCAST.sig_header
sign, signature_ok, signed_headers = BROADCAST.sign, BROADCAST.signature_ok, BROADCAST.headers


@dataclass(frozen=True)
class BroadcastRequest:
    request_id: str
    areas: list[str]
    text: str
    repeat: int
    level: str
    drill: bool

    def body(self) -> bytes:
        return json.dumps({"request_id": self.request_id, "areas": self.areas, "text": self.text,
                           "repeat": self.repeat, "level": self.level, "drill": self.drill},
                          ensure_ascii=False, separators=(",", ":")).encode()


@dataclass(frozen=True)
class Receipt:
    """What one terminal (or one area, when the platform reports per area) did: played | failed."""

    area: str
    status: str
    terminal: str = ""
    error: str = ""


@dataclass(frozen=True)
class Accepted:
    task_id: str
    status: str = "accepted"
    receipts: list[Receipt] = field(default_factory=list)  # the simulator's, at once; a platform's come later
    asked: bool = False  # found by asking the platform for the request (an earlier try had reached it)


class BroadcastError(Exception):
    """The platform could not be reached or refused: `retry` says whether another try may succeed."""

    def __init__(self, message: str, retry: bool = True) -> None:
        super().__init__(message)
        self.retry = retry


class SimulatorBroadcast:
    """Answers at once and plays locally: every area's terminals report played."""

    name = "simulator"

    async def play(self, req: BroadcastRequest, maybe_sent: bool = False) -> Accepted:
        task = "SIMB-" + hashlib.sha256(req.request_id.encode()).hexdigest()[:16]
        return Accepted(task_id=task, receipts=[Receipt(area=a, status="played", terminal=f"{a}-sim") for a in req.areas])


class HttpBroadcast:
    name = "http"

    def __init__(self, settings, *, timeout_s: float = 10.0) -> None:
        secret = settings.broadcast_secret.get_secret_value() if settings.broadcast_secret else ""
        if not (settings.broadcast_url and secret):
            raise ValueError("the http broadcast gateway needs YINGJI_BROADCAST_URL and YINGJI_BROADCAST_SECRET")
        self.url = settings.broadcast_url.rstrip("/")
        self.secret = secret
        self.timeout_s = timeout_s

    async def find(self, http: httpx.AsyncClient, request_id: str) -> Accepted | None:
        """The platform's task for this request, or None when it holds none."""
        resp = await http.get(f"{self.url}/broadcasts", params={"request_id": request_id},
                              headers=signed_headers(self.secret, b""))
        if resp.status_code == 404:
            return None
        if not resp.is_success:
            raise BroadcastError(f"broadcast platform HTTP {resp.status_code} asking for {request_id}: {resp.text[:200]}",
                                 retry=resp.status_code >= 500 or resp.status_code == 429)
        task = _task(resp)
        return Accepted(task_id=task[0], status=task[1], asked=True)

    async def play(self, req: BroadcastRequest, maybe_sent: bool = False) -> Accepted:
        """Post the broadcast once. `maybe_sent`: an earlier try may have reached the platform, so ask first."""
        body = req.body()
        try:
            async with httpx.AsyncClient(timeout=self.timeout_s) as http:
                if maybe_sent and (found := await self.find(http, req.request_id)) is not None:
                    return found
                try:
                    resp = await http.post(f"{self.url}/broadcasts", content=body,
                                           headers=signed_headers(self.secret, body))
                except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                    raise BroadcastError(f"broadcast platform unreachable: {type(exc).__name__}") from exc
                except httpx.HTTPError as exc:  # the request may have reached it: ask rather than post again
                    if (found := await self.find(http, req.request_id)) is not None:
                        return found
                    raise BroadcastError(f"broadcast platform: {type(exc).__name__}, and it holds no such task") from exc
                if resp.status_code >= 500:
                    if (found := await self.find(http, req.request_id)) is not None:
                        return found
                    raise BroadcastError(f"broadcast platform HTTP {resp.status_code}, and it holds no such task")
                if not resp.is_success:
                    raise BroadcastError(f"broadcast platform refused HTTP {resp.status_code}: {resp.text[:200]}",
                                         retry=resp.status_code == 429)
                task_id, status = _task(resp)
                return Accepted(task_id=task_id, status=status)
        except httpx.HTTPError as exc:  # asking failed too
            raise BroadcastError(f"broadcast platform: {type(exc).__name__}") from exc


def _task(resp: httpx.Response) -> tuple[str, str]:
    try:
        answer = resp.json()
    except ValueError:
        answer = None
    task = answer.get("task_id") if isinstance(answer, dict) else None
    if not isinstance(task, str) or not task:
        raise BroadcastError(f"broadcast platform answered without a task_id: {resp.text[:200]}")
    return task, str(answer.get("status") or "accepted")
