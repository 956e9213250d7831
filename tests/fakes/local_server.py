"""What the local fake platforms share: a Starlette app served by uvicorn in a thread on 127.0.0.1 (real HTTP),
and, for the platforms that sign with a shared secret (activities/gateways/hmac_scheme.py), the check of a
request's signature, answers failed on purpose after recording (`fail_next`: a barrier for the retry tests), and
signed pushes to yingji's webhooks.

A fake sets `app`, `port` and `name` (and `scheme`, `secret`, `window_s`, `lock`, `failing` for a signed one)."""
from __future__ import annotations

import threading
import time

import httpx
import uvicorn
from starlette.requests import Request

from activities.gateways.hmac_scheme import HmacScheme


class LocalServer:
    name = "fake platform"
    app = None
    port: int
    server: uvicorn.Server | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self):
        config = uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="off")
        self.server = uvicorn.Server(config)
        threading.Thread(target=self.server.run, daemon=True, name=self.name).start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError(f"the {self.name} did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.should_exit = True

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


class SignedPlatform(LocalServer):
    scheme: HmacScheme
    secret: str
    window_s: int

    def fail_next(self, n: int) -> None:
        """Fail the next n answers with 503, after the request was recorded (and, for a POST, taken): the sender
        does not know that it went through."""
        with self.lock:
            self.failing = n

    def _fail(self) -> bool:
        with self.lock:
            if self.failing > 0:
                self.failing -= 1
                return True
            return False

    def _verified(self, request: Request, raw: bytes) -> str | None:
        """Why a request is refused (unsigned, stale, bad signature), or None."""
        ts, sig = request.headers.get(self.scheme.ts_header, ""), request.headers.get(self.scheme.sig_header, "")
        if not (ts.isdigit() and sig):
            return "unsigned"
        if abs(time.time() - int(ts)) > self.window_s:
            return "stale"
        if not self.scheme.signature_ok(self.secret, ts, raw, sig):
            return "bad signature"
        return None

    async def push(self, http: httpx.AsyncClient, url: str, body: bytes, *, secret: str | None = None,
                   at: float | None = None, headers: dict[str, str] | None = None) -> httpx.Response:
        """POST a body to yingji's webhook, signed (with this secret, at this time) unless headers are given."""
        hdrs = headers if headers is not None else self.scheme.headers(secret or self.secret, body, now=at)
        return await http.post(url, content=body, headers={"content-type": "application/json", **hdrs})
