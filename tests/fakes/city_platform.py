"""A local fake of the city platform 市级报送平台 (市应急管理局), for yingji's http city line gateway to talk to.

Real HTTP on 127.0.0.1 (uvicorn in a thread). It checks every request's HMAC signature and timestamp (401
otherwise), takes one version of one report for one office once (`(report_id, version, to)`), answers
`GET /reports?report_id=&version=&to=` with what it holds, can fail its next answers *after* recording
(`fail_next`: the sender never hears its report went through) or be down altogether (`down`: 503 to everything,
nothing recorded), and signs for a report afterwards: `push_receipt` posts a signed receipt to yingji's webhook.
`hold_posts` holds the answer to a POST it took until the test releases it: a platform that signs before the
sender has heard it took the report.

    with FakeCityPlatform() as fake: fake.base_url
"""
from __future__ import annotations

import asyncio
import json
import threading
import uuid
from dataclasses import dataclass, field

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from activities.gateways.hmac_scheme import CITYLINE
from tests.fakes.local_server import SignedPlatform
from tests.helpers import free_port


@dataclass
class Seen:
    method: str
    body: dict
    key: tuple[str, int, str]
    status: int = 200


class Hold:
    """The answers to POSTs held after the platform took them (`taken` is set at the first), until `release()`."""

    def __init__(self) -> None:
        self.taken, self.released = threading.Event(), threading.Event()

    def release(self) -> None:
        self.released.set()

    async def wait_taken(self, timeout: float = 60.0) -> None:
        """Until a POST was taken and is held (the timeout only stops a broken test hanging)."""
        if not await asyncio.to_thread(self.taken.wait, timeout):
            raise AssertionError("the fake city platform never took a post")


@dataclass
class FakeCityPlatform(SignedPlatform):
    name = "fake city platform"
    scheme = CITYLINE

    secret: str = "cityline-test-secret"
    port: int = field(default_factory=free_port)
    window_s: int = 300

    def __post_init__(self) -> None:
        self.lock = threading.Lock()
        self.posts: list[Seen] = []  # every signed POST /reports (while up)
        self.asks: list[Seen] = []  # every signed GET /reports (while up)
        self.refused: list[str] = []
        self.reports: dict[tuple[str, int, str], dict] = {}  # (report_id, version, to) -> {receipt_id, body}
        self.failing = 0
        self.down = False
        self.hold: Hold | None = None
        self.app = Starlette(routes=[Route("/reports", self._reports, methods=["GET", "POST"])])

    def hold_posts(self) -> Hold:
        """Hold the answer to every POST taken from now on until `release()` (it is taken first: in `reports`)."""
        self.hold = Hold()
        return self.hold

    def posts_of(self, report_id: str, to: str | None = None) -> list[Seen]:
        with self.lock:
            return [p for p in self.posts if p.key[0] == report_id and (to is None or p.key[2] == to)]

    async def _reports(self, request: Request) -> JSONResponse:
        if self.down:
            return JSONResponse({"error": "maintenance"}, status_code=503)
        raw = await request.body() if request.method == "POST" else b""
        why = self._verified(request, raw)
        if why:
            with self.lock:
                self.refused.append(why)
            return JSONResponse({"error": why}, status_code=401)
        if request.method == "GET":
            q = request.query_params
            key = (q.get("report_id", ""), int(q.get("version", "0")), q.get("to", ""))
            failing = self._fail()
            with self.lock:
                self.asks.append(Seen("GET", {}, key, 503 if failing else 200))
                held = self.reports.get(key)
            if failing:
                return JSONResponse({"error": "busy"}, status_code=503)
            if held is None:
                return JSONResponse({"error": "no such report"}, status_code=404)
            return JSONResponse({"receipt_id": held["receipt_id"], "status": "accepted"})
        body = json.loads(raw)
        key = (body["report_id"], int(body["version"]), body["to"])
        with self.lock:
            held = self.reports.setdefault(key, {"receipt_id": f"C-{uuid.uuid4().hex[:10]}", "body": body})
        failing = self._fail()
        with self.lock:
            self.posts.append(Seen("POST", body, key, 503 if failing else 200))
        if (hold := self.hold) is not None:  # taken; the sender hears nothing until the test releases it
            hold.taken.set()
            await asyncio.to_thread(hold.released.wait, 120)  # (the timeout only stops a broken test hanging)
        if failing:
            return JSONResponse({"error": "gateway timeout"}, status_code=503)
        return JSONResponse({"receipt_id": held["receipt_id"], "status": "accepted"})

    def receipt_body(self, report_id: str, version: int, to: str, by: str = "市局值班员") -> bytes:
        held = self.reports[(report_id, version, to)]
        return json.dumps({"receipt_id": held["receipt_id"], "report_id": report_id, "version": version, "to": to,
                           "status": "signed", "by": by}, ensure_ascii=False).encode()

    async def push_receipt(self, http: httpx.AsyncClient, url: str, report_id: str, version: int,
                           to: str, at: float | None = None, by: str = "市局值班员") -> httpx.Response:
        """The office's receipt, signed now (or at `at`). The same report signed for again by someone else (`by`) is
        another request, signed anew, not a replay of the first."""
        return await self.push(http, url, self.receipt_body(report_id, version, to, by=by), at=at)
