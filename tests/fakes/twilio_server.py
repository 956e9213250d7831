"""A local fake of the Twilio REST API, for the real twilio SDK to talk to.

It serves what yingji's gateway calls (Messages.json and Calls.json: create and list) with
Twilio-shaped JSON, checks HTTP basic auth, records every request, can fail the next N
creates with a Twilio error code (21610, 20429 as HTTP 429, 30003, …), can hold its answers to
creates from the k-th on (the messages exist, the sender has not heard: a barrier for fault tests,
`hold_creates`), and plays Twilio's
side of the conversation: status callbacks, the call's TwiML fetch with AnsweredBy,
keypresses into the <Gather> action, inbound SMS, each POSTed to the app's webhook URL
with an `X-Twilio-Signature` computed by the SDK's own RequestValidator.

Run in a thread by uvicorn on a free port: `with FakeTwilio() as fake: fake.base_url`.
"""
from __future__ import annotations

import asyncio
import base64
import threading
import time
import uuid
import xml.etree.ElementTree as ET
from collections import Counter, deque
from dataclasses import dataclass, field
from datetime import UTC, datetime

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from twilio.request_validator import RequestValidator

from tests.helpers import free_port

API = "/2010-04-01/Accounts/{account}"
ERRORS = {21610: "Attempt to send to unsubscribed recipient", 20429: "Too Many Requests",
          30003: "Unreachable destination handset",
          21211: "The 'To' number {to} is not a valid phone number."}  # Twilio quotes the number


def rfc2822(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%a, %d %b %Y %H:%M:%S +0000")


@dataclass
class Recorded:
    method: str
    path: str
    params: dict[str, list[str]]
    status: int = 200
    at: float = field(default_factory=time.monotonic)  # when the request arrived (benchmarks)

    @property
    def kind(self) -> str:
        return "sms" if "Messages" in self.path else "voice"

    def one(self, name: str) -> str | None:
        return self.params.get(name, [None])[-1]


@dataclass
class Failure:
    code: int
    http_status: int
    kind: str | None = None  # sms | voice | None (either)


@dataclass
class Hold:
    """From the k-th create on, Twilio creates the message or call (it exists, it is listed) and keeps its
    answer until `release()`: the sender is left between sending and hearing back, for as long as a test needs
    (to kill it there, say). `held` are the creates made meanwhile, `reached` is set at the first."""

    at: int  # the count of accepted creates (of `kind`) at which holding begins
    kind: str | None = None
    held: list[tuple[Recorded, str]] = field(default_factory=list)  # (request, sid)
    reached: threading.Event = field(default_factory=threading.Event)
    released: threading.Event = field(default_factory=threading.Event)

    async def wait(self, timeout: float) -> None:
        """Until the k-th create has been made (in the caller's event loop, without blocking it)."""
        if not await asyncio.to_thread(self.reached.wait, timeout):
            raise AssertionError(f"no create number {self.at} within {timeout:.0f} s (the hold was never reached)")

    def release(self) -> None:
        self.released.set()

    @property
    def outbox_ids(self) -> list[str]:
        """yingji's outbox ids of the held creates (they ride in the status callback URL as ?o=)."""
        from urllib.parse import parse_qs, urlsplit

        return [parse_qs(urlsplit(r.one("StatusCallback") or "").query).get("o", ["?"])[0] for r, _ in self.held]


@dataclass
class FakeTwilio:
    account_sid: str = "AC" + "f" * 32
    auth_token: str = "fake-auth-token"
    from_number: str = "+15005550006"
    requests: list[Recorded] = field(default_factory=list)
    messages: dict[str, dict] = field(default_factory=dict)
    calls: dict[str, dict] = field(default_factory=dict)
    twiml: dict[str, str] = field(default_factory=dict, repr=False)  # the last TwiML each call got

    def __post_init__(self) -> None:
        self.lock = threading.Lock()
        self.failures: deque[Failure] = deque()
        self.holds: list[Hold] = []
        self.accepted: Counter = Counter()  # creates answered 201 (or held), per kind and in all (None)
        self.stalls: deque[tuple[threading.Event, threading.Event]] = deque()  # hold_next: before creating
        self.port = free_port()
        base = API.format(account="{account}")
        self.app = Starlette(routes=[
            Route(base + "/Messages.json", self._messages, methods=["GET", "POST"]),
            Route(base + "/Calls.json", self._calls, methods=["GET", "POST"]),
        ])
        self.server: uvicorn.Server | None = None

    # ------------------------------------------------------------------ control

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def fail_next(self, n: int, code: int, http_status: int | None = None, kind: str | None = None) -> None:
        """The next n creates (of `kind`: sms or voice, default either) answer with this Twilio error
        (20429 as HTTP 429, others 400)."""
        with self.lock:
            self.failures.extend([Failure(code, http_status or (429 if code == 20429 else 400), kind)] * n)

    def hold_creates(self, after: int = 1, kind: str | None = None) -> Hold:
        """Hold the answers to creates (of `kind`, default either) from the `after`-th one from now on,
        until the returned Hold is released. `await hold.wait(timeout)` returns once the first is held."""
        with self.lock:
            hold = Hold(at=self.accepted[kind] + after, kind=kind)
            self.holds.append(hold)
        return hold

    def _accept(self, rec: Recorded, sid: str) -> Hold | None:
        """Count an accepted create; the hold it falls under, if any."""
        with self.lock:
            rec.status = 201
            self.accepted[rec.kind] += 1
            self.accepted[None] += 1
            for hold in self.holds:
                if not hold.released.is_set() and self.accepted[hold.kind] >= hold.at and hold.kind in (None, rec.kind):
                    hold.held.append((rec, sid))
                    hold.reached.set()
                    return hold
        return None

    @staticmethod
    async def _held(hold: Hold | None) -> None:
        if hold is not None:  # the answer waits (a bound against a test that never releases)
            await asyncio.to_thread(hold.released.wait, 600)
    def hold_next(self) -> tuple[threading.Event, threading.Event]:
        """The next create waits, before anything is created, until the test sets `release`;
        `arrived` is set when it is being held (a request stalled in the network or at Twilio)."""
        arrived, release = threading.Event(), threading.Event()
        with self.lock:
            self.stalls.append((arrived, release))
        return arrived, release

    async def _hold(self) -> None:
        with self.lock:
            hold = self.stalls.popleft() if self.stalls else None
        if hold is not None:
            arrived, release = hold
            arrived.set()
            while not release.is_set():
                await asyncio.sleep(0.02)

    def _failure_for(self, kind: str) -> Failure | None:
        with self.lock:
            for f in self.failures:
                if f.kind in (None, kind):
                    self.failures.remove(f)
                    return f
        return None

    def creates(self, kind: str | None = None) -> list[Recorded]:
        with self.lock:
            return [r for r in self.requests if r.method == "POST" and (kind is None or r.kind == kind)]

    def created(self, kind: str | None = None) -> list[Recorded]:
        """Creates that Twilio accepted (a message or call exists)."""
        return [r for r in self.creates(kind) if r.status == 201]

    def reset(self) -> None:
        with self.lock:
            for hold in self.holds:
                hold.release()
            self.holds.clear()
            self.accepted.clear()
            self.requests.clear()
            self.messages.clear()
            self.calls.clear()
            self.twiml.clear()
            self.failures.clear()

    def start(self) -> "FakeTwilio":
        config = uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="off")
        self.server = uvicorn.Server(config)
        threading.Thread(target=self.server.run, daemon=True, name="fake-twilio").start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("the fake Twilio server did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        for hold in self.holds:  # no answer stays held past the server's life
            hold.release()
        if self.server is not None:
            self.server.should_exit = True

    def __enter__(self) -> "FakeTwilio":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # ------------------------------------------------------------------ the REST API

    async def _record(self, request: Request) -> tuple[Recorded, JSONResponse | None]:
        try:
            form = await request.form() if request.method == "POST" else request.query_params
        except ClientDisconnect:  # the sender died mid-request (a killed worker): nothing was created
            return Recorded(request.method, request.url.path, {}, status=499), JSONResponse({}, status_code=499)
        params: dict[str, list[str]] = {}
        for k, v in form.multi_items():
            params.setdefault(k, []).append(str(v))
        rec = Recorded(request.method, request.url.path, params)
        with self.lock:
            self.requests.append(rec)
        auth = "Basic " + base64.b64encode(f"{self.account_sid}:{self.auth_token}".encode()).decode()
        if request.headers.get("authorization") != auth or request.path_params["account"] != self.account_sid:
            rec.status = 401
            return rec, JSONResponse({"code": 20003, "message": "Authenticate", "more_info":
                                      "https://www.twilio.com/docs/errors/20003", "status": 401}, status_code=401)
        if request.method == "POST":
            await self._hold()
            failure = self._failure_for(rec.kind)
            if failure is not None:
                rec.status = failure.http_status
                return rec, JSONResponse({"code": failure.code, "message": ERRORS.get(failure.code, "Error").format(to=rec.one("To")),
                                          "more_info": f"https://www.twilio.com/docs/errors/{failure.code}",
                                          "status": failure.http_status}, status_code=failure.http_status)
        return rec, None

    def _page(self, key: str, items: list[dict], request: Request) -> JSONResponse:
        q = request.query_params
        found = [i for i in items if q.get("To") in (None, i["to"]) and q.get("From") in (None, i["from"])]
        found.sort(key=lambda i: i["_at"], reverse=True)  # newest first, as Twilio lists
        size = int(q.get("PageSize", 50))
        uri = request.url.path
        return JSONResponse({key: [self._public(i) for i in found[:size]], "end": min(size, len(found)) - 1,
                             "first_page_uri": uri, "next_page_uri": None, "page": 0, "page_size": size,
                             "previous_page_uri": None, "start": 0, "uri": uri})

    @staticmethod
    def _public(item: dict) -> dict:
        return {k: v for k, v in item.items() if not k.startswith("_")}

    async def _messages(self, request: Request) -> JSONResponse:
        rec, refused = await self._record(request)
        if refused is not None:
            return refused
        if request.method == "GET":
            return self._page("messages", list(self.messages.values()), request)
        now = datetime.now(UTC)
        sid = "SM" + uuid.uuid4().hex
        msg = {"sid": sid, "account_sid": self.account_sid, "api_version": "2010-04-01", "body": rec.one("Body"),
               "date_created": rfc2822(now), "date_updated": rfc2822(now), "date_sent": None,
               "direction": "outbound-api", "error_code": None, "error_message": None, "from": rec.one("From"),
               "messaging_service_sid": None, "num_media": "0", "num_segments": "1", "price": None,
               "price_unit": "USD", "status": "queued", "to": rec.one("To"),
               "uri": f"{API.format(account=self.account_sid)}/Messages/{sid}.json", "subresource_uris": {},
               "_at": time.monotonic(), "_status_callback": rec.one("StatusCallback")}
        with self.lock:
            self.messages[sid] = msg
        await self._held(self._accept(rec, sid))
        return JSONResponse(self._public(msg), status_code=201)

    async def _calls(self, request: Request) -> JSONResponse:
        rec, refused = await self._record(request)
        if refused is not None:
            return refused
        if request.method == "GET":
            return self._page("calls", list(self.calls.values()), request)
        now = datetime.now(UTC)
        sid = "CA" + uuid.uuid4().hex
        call = {"sid": sid, "account_sid": self.account_sid, "api_version": "2010-04-01", "to": rec.one("To"),
                "from": rec.one("From"), "status": "queued", "date_created": rfc2822(now), "date_updated": rfc2822(now),
                "start_time": None, "end_time": None, "duration": None, "direction": "outbound-api",
                "answered_by": None, "parent_call_sid": None, "price": None, "price_unit": "USD",
                "uri": f"{API.format(account=self.account_sid)}/Calls/{sid}.json", "subresource_uris": {},
                "_at": time.monotonic(), "_url": rec.one("Url"), "_status_callback": rec.one("StatusCallback"),
                "_events": rec.params.get("StatusCallbackEvent", []), "_machine_detection": rec.one("MachineDetection")}
        with self.lock:
            self.calls[sid] = call
        await self._held(self._accept(rec, sid))
        return JSONResponse(self._public(call), status_code=201)

    # ------------------------------------------------------------------ Twilio's side of the conversation

    def sign(self, url: str, params: dict[str, str], token: str | None = None) -> str:
        return RequestValidator(token or self.auth_token).compute_signature(url, params)

    async def post(self, http: httpx.AsyncClient, url: str, params: dict[str, str], *,
                   token: str | None = None) -> httpx.Response:
        """POST a callback form to the app, signed like Twilio signs it."""
        return await http.post(url, data=params, headers={"X-Twilio-Signature": self.sign(url, params, token)})

    async def message_status(self, http: httpx.AsyncClient, sid: str, status: str,
                             error_code: int | None = None) -> httpx.Response:
        msg = self.messages[sid]
        msg["status"], msg["error_code"] = status, error_code
        params = {"MessageSid": sid, "SmsSid": sid, "MessageStatus": status, "SmsStatus": status,
                  "AccountSid": self.account_sid, "From": msg["from"], "To": msg["to"], "ApiVersion": "2010-04-01"}
        if error_code:
            params["ErrorCode"] = str(error_code)
        return await self.post(http, msg["_status_callback"], params)

    async def inbound_sms(self, http: httpx.AsyncClient, url: str, from_: str, body: str) -> httpx.Response:
        sid = "SM" + uuid.uuid4().hex
        return await self.post(http, url, {"MessageSid": sid, "SmsSid": sid, "SmsMessageSid": sid,
                                           "AccountSid": self.account_sid, "From": from_, "To": self.from_number,
                                           "Body": body, "NumMedia": "0", "NumSegments": "1",
                                           "SmsStatus": "received", "ApiVersion": "2010-04-01"})

    def _call_params(self, sid: str, status: str, **extra: str | None) -> dict[str, str]:
        call = self.calls[sid]
        params = {"CallSid": sid, "AccountSid": self.account_sid, "From": call["from"], "To": call["to"],
                  "CallStatus": status, "Direction": "outbound-api", "ApiVersion": "2010-04-01"}
        return {**params, **{k: v for k, v in extra.items() if v is not None}}

    async def answer_call(self, http: httpx.AsyncClient, sid: str, answered_by: str = "human") -> httpx.Response:
        """The call connects: Twilio fetches its TwiML (AnsweredBy from the machine detection)."""
        call = self.calls[sid]
        call["status"], call["answered_by"] = "in-progress", answered_by
        resp = await self.post(http, call["_url"], self._call_params(sid, "in-progress", AnsweredBy=answered_by))
        self.twiml[sid] = resp.text
        return resp

    def gather_action(self, sid: str) -> str | None:
        gather = ET.fromstring(self.twiml[sid]).find("Gather")
        return gather.get("action") if gather is not None else None

    async def press(self, http: httpx.AsyncClient, sid: str, digits: str) -> httpx.Response:
        """The person presses keys in the call's current <Gather>."""
        action = self.gather_action(sid)
        if action is None:
            raise AssertionError(f"call {sid} is not waiting for a key: {self.twiml.get(sid)}")
        resp = await self.post(http, action, self._call_params(sid, "in-progress", Digits=digits, FinishedOnKey=""))
        self.twiml[sid] = resp.text
        return resp

    async def call_status(self, http: httpx.AsyncClient, sid: str, status: str,
                          answered_by: str | None = None) -> httpx.Response:
        call = self.calls[sid]
        call["status"] = status
        duration = "12" if status == "completed" else None
        return await self.post(http, call["_status_callback"],
                               self._call_params(sid, status, AnsweredBy=answered_by or call.get("answered_by"),
                                                 CallDuration=duration))


def use_fake_twilio(monkeypatch, fake: FakeTwilio, public_base_url: str = "http://yingji.test",
                    voice_per_s: float = 50.0, sms_per_s: float = 50.0) -> None:
    """Point yingji's settings at the fake (YINGJI_GATEWAY=twilio) and forget built gateways and gates."""
    from activities.delivery import reset_gates
    from activities.gateways import reset_gateways
    from config import get_settings

    for name, value in {"GATEWAY": "twilio", "TWILIO_ACCOUNT_SID": fake.account_sid,
                        "TWILIO_AUTH_TOKEN": fake.auth_token, "TWILIO_FROM_NUMBER": fake.from_number,
                        "TWILIO_API_BASE": fake.base_url, "PUBLIC_BASE_URL": public_base_url,
                        "RATE_VOICE_PER_S": str(voice_per_s), "RATE_SMS_PER_S": str(sms_per_s),
                        "RUN_SCHEDULER": "false"}.items():
        monkeypatch.setenv(f"YINGJI_{name}", value)
    get_settings.cache_clear()
    reset_gateways()
    reset_gates()
    fake.reset()
