"""A local fake of the hotline platform (12345 政务服务便民热线) that takes 回访 results.

`POST /results` with a JSON body and an `Idempotency-Key` header: the first request of a key is stored and
answered `{"receipt": ..., "duplicate": false}`; a repeat of the key is answered with the same receipt and
`duplicate: true`, storing nothing. `lose_answers(n)`: the next n requests are stored (or found) as usual but
answered 503, as if the answer were lost on the way back — the sender must retry, and the platform must
still hold the result once (a barrier: the result is recorded before the failure is answered, `stored` is set).
`hold_answers()`: the next request is stored (or found) as usual and its answer kept until the hold is released —
the sender is left between posting and hearing back, for as long as a test needs (to kill it there).

Run in a thread by uvicorn on a free port: `with FakeHotline() as fake: fake.base_url`.
"""
from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass, field

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.fakes.local_server import LocalServer
from tests.helpers import free_port


@dataclass
class Hold:
    reached: threading.Event = field(default_factory=threading.Event)
    released: threading.Event = field(default_factory=threading.Event)

    async def wait(self, timeout: float) -> None:
        if not await asyncio.to_thread(self.reached.wait, timeout):
            raise AssertionError(f"no result posted within {timeout:.0f} s (the hold was never reached)")

    def release(self) -> None:
        self.released.set()


@dataclass
class FakeHotline(LocalServer):
    name = "fake hotline platform"

    port: int = field(default_factory=free_port)
    results: dict[str, dict] = field(default_factory=dict)  # idempotency key -> body
    requests: list[str] = field(default_factory=list)  # the key of every request, in order
    lost: int = 0
    hold: Hold | None = None
    stored: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self.lock = threading.Lock()
        self.app = Starlette(routes=[Route("/results", self._result, methods=["POST"])])

    def hold_answers(self) -> Hold:
        with self.lock:
            self.hold = Hold()
            return self.hold

    def lose_answers(self, n: int) -> None:
        with self.lock:
            self.lost = n

    async def _result(self, request: Request) -> JSONResponse:
        key = request.headers.get("idempotency-key")
        body = await request.json()
        if not key:
            return JSONResponse({"error": "Idempotency-Key is required"}, status_code=400)
        with self.lock:
            self.requests.append(key)
            duplicate = key in self.results
            if not duplicate:
                self.results[key] = body
            self.stored.set()
            lose = self.lost > 0
            if lose:
                self.lost -= 1
            hold, self.hold = self.hold, None
        if hold is not None:  # stored; the answer waits (a bound against a test that never releases)
            hold.reached.set()
            await asyncio.to_thread(hold.released.wait, 600)
        if lose:
            return JSONResponse({"error": "answer lost"}, status_code=503)
        return JSONResponse({"receipt": f"R-{key}", "duplicate": duplicate})

