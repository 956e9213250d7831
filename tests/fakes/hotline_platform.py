"""A local fake of the hotline platform (12345 政务服务便民热线) that takes 回访 results.

`POST /results` with a JSON body and an `Idempotency-Key` header: the first request of a key is stored and
answered `{"receipt": ..., "duplicate": false}`; a repeat of the key is answered with the same receipt and
`duplicate: true`, storing nothing. `lose_answers(n)`: the next n requests are stored (or found) as usual but
answered 503, as if the answer were lost on the way back — the sender must retry, and the platform must
still hold the result once (a barrier: the result is recorded before the failure is answered, `stored` is set).

Run in a thread by uvicorn on a free port: `with FakeHotline() as fake: fake.base_url`.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.fakes.local_server import LocalServer
from tests.helpers import free_port


@dataclass
class FakeHotline(LocalServer):
    name = "fake hotline platform"

    port: int = field(default_factory=free_port)
    results: dict[str, dict] = field(default_factory=dict)  # idempotency key -> body
    requests: list[str] = field(default_factory=list)  # the key of every request, in order
    lost: int = 0
    stored: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self.lock = threading.Lock()
        self.app = Starlette(routes=[Route("/results", self._result, methods=["POST"])])

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
        if lose:
            return JSONResponse({"error": "answer lost"}, status_code=503)
        return JSONResponse({"receipt": f"R-{key}", "duplicate": duplicate})

