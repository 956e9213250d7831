"""A local fake of an IP broadcast platform 应急广播平台, for yingji's http broadcast gateway to talk to.

Real HTTP on 127.0.0.1 (uvicorn in a thread). It checks every request's HMAC signature and timestamp with the
shared secret (401 otherwise), records each request, creates one task per request_id (a platform's
idempotency), answers `GET /broadcasts?request_id=` with the task it holds, can fail its next answers *after*
it has recorded and accepted the request (`fail_next`: the sender never hears that its request went through; a
barrier for the retry tests, not luck), and plays the platform's side afterwards: `push_receipt` posts a signed
receipt to yingji's webhook (`/api/webhooks/broadcast`).

    with FakeBroadcastPlatform() as fake: fake.base_url
"""
from __future__ import annotations

import json
import threading
import uuid
from dataclasses import dataclass, field

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from activities.gateways.broadcast import sign
from activities.gateways.hmac_scheme import BROADCAST
from tests.fakes.local_server import SignedPlatform
from tests.helpers import free_port


@dataclass
class Seen:
    method: str
    body: dict
    request_id: str
    status: int = 200  # what the fake answered


@dataclass
class FakeBroadcastPlatform(SignedPlatform):
    name = "fake broadcast platform"
    scheme = BROADCAST

    secret: str = "broadcast-test-secret"
    port: int = field(default_factory=free_port)
    window_s: int = 300

    def __post_init__(self) -> None:
        self.lock = threading.Lock()
        self.posts: list[Seen] = []  # every POST /broadcasts that was signed correctly
        self.asks: list[Seen] = []  # every GET /broadcasts?request_id=
        self.refused: list[str] = []  # why unsigned or badly signed requests were refused
        self.tasks: dict[str, dict] = {}  # request_id -> {task_id, areas, ...}
        self.failing = 0  # answers still to fail (after recording): 503
        self.failed_after_accept = threading.Event()  # set when a POST was accepted but answered 503
        self.app = Starlette(routes=[Route("/broadcasts", self._broadcasts, methods=["GET", "POST"])])

    def posts_of(self, request_id: str) -> list[Seen]:
        with self.lock:
            return [p for p in self.posts if p.request_id == request_id]

    # ------------------------------------------------------------------ the platform's API

    async def _broadcasts(self, request: Request) -> JSONResponse:
        raw = await request.body() if request.method == "POST" else b""
        why = self._verified(request, raw)
        if why:
            with self.lock:
                self.refused.append(why)
            return JSONResponse({"error": why}, status_code=401)
        if request.method == "GET":
            rid = request.query_params.get("request_id", "")
            failing = self._fail()
            with self.lock:
                self.asks.append(Seen("GET", {}, rid, 503 if failing else 200))
                task = self.tasks.get(rid)
            if failing:
                return JSONResponse({"error": "busy"}, status_code=503)
            if task is None:
                return JSONResponse({"error": "no such request"}, status_code=404)
            return JSONResponse({"task_id": task["task_id"], "status": "accepted", "request_id": rid})
        body = json.loads(raw)
        rid = body["request_id"]
        with self.lock:
            task = self.tasks.setdefault(rid, {"task_id": f"T-{uuid.uuid4().hex[:10]}", "areas": body["areas"],
                                               "text": body["text"]})
        failing = self._fail()
        with self.lock:
            self.posts.append(Seen("POST", body, rid, 503 if failing else 200))
        if failing:
            self.failed_after_accept.set()
            return JSONResponse({"error": "gateway timeout"}, status_code=503)
        return JSONResponse({"task_id": task["task_id"], "status": "accepted"})

    # ------------------------------------------------------------------ the platform's receipts

    def receipt_body(self, request_id: str, statuses: dict[str, str]) -> bytes:
        """A receipt: area -> played | failed, one terminal per area."""
        task = self.tasks[request_id]
        results = [{"area": a, "terminal": f"{a}-T1", "status": st, **({"error": "终端离线"} if st == "failed" else {})}
                   for a, st in statuses.items()]
        return json.dumps({"task_id": task["task_id"], "request_id": request_id, "results": results},
                          ensure_ascii=False).encode()

    async def push_receipt(self, http: httpx.AsyncClient, url: str, request_id: str,
                           statuses: dict[str, str]) -> httpx.Response:
        return await self.push(http, url, self.receipt_body(request_id, statuses))


__all__ = ["FakeBroadcastPlatform", "sign"]
