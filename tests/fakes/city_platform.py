"""A local fake of the city platform 市级报送平台 (市应急管理局), for yingji's http city line gateway to talk to.

Real HTTP on 127.0.0.1 (uvicorn in a thread). It checks every request's HMAC signature and timestamp (401
otherwise), takes one version of one report for one office once (`(report_id, version, to)`), answers
`GET /reports?report_id=&version=&to=` with what it holds, can fail its next answers *after* recording
(`fail_next`: the sender never hears its report went through) or be down altogether (`down`: 503 to everything,
nothing recorded), and signs for a report afterwards: `push_receipt` posts a signed receipt to yingji's webhook.

    with FakeCityPlatform() as fake: fake.base_url
"""
from __future__ import annotations

import json
import threading
import time
import uuid
from dataclasses import dataclass, field

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from activities.gateways.cityline import SIG_HEADER, TS_HEADER, signature_ok, signed_headers
from tests.helpers import free_port


@dataclass
class Seen:
    method: str
    body: dict
    key: tuple[str, int, str]
    status: int = 200


@dataclass
class FakeCityPlatform:
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
        self.app = Starlette(routes=[Route("/reports", self._reports, methods=["GET", "POST"])])
        self.server: uvicorn.Server | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def fail_next(self, n: int) -> None:
        with self.lock:
            self.failing = n

    def posts_of(self, report_id: str, to: str | None = None) -> list[Seen]:
        with self.lock:
            return [p for p in self.posts if p.key[0] == report_id and (to is None or p.key[2] == to)]

    def start(self) -> "FakeCityPlatform":
        self.server = uvicorn.Server(uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_level="warning",
                                                    lifespan="off"))
        threading.Thread(target=self.server.run, daemon=True, name="fake-city").start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("the fake city platform did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.should_exit = True

    def __enter__(self) -> "FakeCityPlatform":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def _verified(self, request: Request, raw: bytes) -> str | None:
        ts, sig = request.headers.get(TS_HEADER, ""), request.headers.get(SIG_HEADER, "")
        if not (ts.isdigit() and sig):
            return "unsigned"
        if abs(time.time() - int(ts)) > self.window_s:
            return "stale"
        if not signature_ok(self.secret, ts, raw, sig):
            return "bad signature"
        return None

    def _fail(self) -> bool:
        with self.lock:
            if self.failing > 0:
                self.failing -= 1
                return True
            return False

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
        if failing:
            return JSONResponse({"error": "gateway timeout"}, status_code=503)
        return JSONResponse({"receipt_id": held["receipt_id"], "status": "accepted"})

    def receipt_body(self, report_id: str, version: int, to: str, by: str = "市局值班员") -> bytes:
        held = self.reports[(report_id, version, to)]
        return json.dumps({"receipt_id": held["receipt_id"], "report_id": report_id, "version": version, "to": to,
                           "status": "signed", "by": by}, ensure_ascii=False).encode()

    async def push(self, http: httpx.AsyncClient, url: str, body: bytes, *, secret: str | None = None,
                   headers: dict[str, str] | None = None) -> httpx.Response:
        hdrs = headers if headers is not None else signed_headers(secret or self.secret, body)
        return await http.post(url, content=body, headers={"content-type": "application/json", **hdrs})

    async def push_receipt(self, http: httpx.AsyncClient, url: str, report_id: str, version: int,
                           to: str) -> httpx.Response:
        return await self.push(http, url, self.receipt_body(report_id, version, to))
