"""Call an ASGI app directly and keep only what the response started with; or hold a server-sent-event stream open.

httpx's ASGITransport waits for the whole body, so a server-sent-event stream would never
return; here the request ends (a client disconnect) as soon as the status and headers are
known, and the body is whatever came with them (`call`), or the events are read as they come
until the test closes the stream (`Stream`).
"""
from __future__ import annotations

import asyncio
import json as jsonlib
from dataclasses import dataclass, field
from urllib.parse import urlencode


@dataclass
class Answer:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")

    def json(self):
        return jsonlib.loads(self.body)


async def call(app, method: str, path: str, *, headers: dict[str, str] | None = None, json=None,
               form: dict | None = None, content: bytes | None = None, client: str = "127.0.0.1",
               timeout: float = 30.0) -> Answer:
    path, _, query = path.partition("?")
    hdrs = {"host": "test", **{k.lower(): v for k, v in (headers or {}).items()}}
    body = b""
    if json is not None:
        body, hdrs["content-type"] = jsonlib.dumps(json).encode(), "application/json"
    elif form is not None:
        body, hdrs["content-type"] = urlencode(form, doseq=True).encode(), "application/x-www-form-urlencoded"
    elif content is not None:
        body = content
    if body:
        hdrs.setdefault("content-length", str(len(body)))
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method, "scheme": "http",
             "path": path, "raw_path": path.encode(), "query_string": query.encode(), "root_path": "",
             "headers": [(k.encode(), v.encode()) for k, v in hdrs.items()], "client": (client, 50000),
             "server": ("test", 80), "state": {}}
    done = asyncio.Event()
    sent = False

    async def receive():
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await done.wait()
        return {"type": "http.disconnect"}

    started: asyncio.Future = asyncio.get_running_loop().create_future()
    chunks: list[bytes] = []

    async def send(message):
        if message["type"] == "http.response.start" and not started.done():
            started.set_result(message)
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                done.set()

    task = asyncio.create_task(app(scope, receive, send))
    await asyncio.wait({started, task}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    if not started.done():
        if task.done():
            raise task.exception() or AssertionError(f"{method} {path}: the app ended without answering")
        task.cancel()
        raise AssertionError(f"{method} {path}: no response within {timeout} s")
    streaming = any(k == b"content-type" and v.startswith(b"text/event-stream")
                    for k, v in started.result().get("headers", []))
    if not streaming:  # a whole answer; a stream ends when we "disconnect"
        try:
            await asyncio.wait_for(asyncio.shield(done.wait()), 10)
        except TimeoutError:
            pass
    done.set()
    try:
        await asyncio.wait_for(task, 5)
    except (TimeoutError, asyncio.CancelledError):
        task.cancel()
    except Exception:  # noqa: BLE001 - the status is what we came for
        pass
    start = started.result()
    return Answer(start["status"], {k.decode().lower(): v.decode() for k, v in start.get("headers", [])}, b"".join(chunks))


ANTI_HANG_S = 30  # every wait for a stream is for something that happens at once; 10x and more of what it takes


class Stream:
    """One server-sent-event stream held open against the ASGI app until `close()`."""

    def __init__(self, app, path: str, cookie: str):
        self.status: asyncio.Future = asyncio.get_running_loop().create_future()
        self.events: list[tuple[str, object]] = []
        self.got = asyncio.Event()
        self.gone = asyncio.Event()
        self._buf = b""
        path, _, query = path.partition("?")
        scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET", "scheme": "http",
                 "path": path, "raw_path": path.encode(), "query_string": query.encode(), "root_path": "",
                 "headers": [(b"host", b"test"), (b"cookie", cookie.encode())], "client": ("127.0.0.1", 50000),
                 "server": ("test", 80), "state": {}}
        self.task = asyncio.create_task(app(scope, self._receive, self._send))

    async def _receive(self):
        await self.gone.wait()
        return {"type": "http.disconnect"}

    async def _send(self, message):
        if message["type"] == "http.response.start":
            self.status.set_result(message["status"])
        elif message["type"] == "http.response.body":
            self._buf += message.get("body", b"")
            while b"\n\n" in self._buf:
                block, self._buf = self._buf.split(b"\n\n", 1)
                fields = dict(line.split(": ", 1) for line in block.decode().splitlines() if ": " in line)
                if "event" in fields:
                    self.events.append((fields["event"], jsonlib.loads(fields.get("data", "null"))))
                    self.got.set()

    async def close(self):
        self.gone.set()
        try:
            await asyncio.wait_for(self.task, ANTI_HANG_S)
        except Exception:  # noqa: BLE001 - ending the stream is what we came for
            pass


async def until(what: str, check) -> None:
    async def loop():
        while not check():
            await asyncio.sleep(0.01)

    try:
        await asyncio.wait_for(loop(), ANTI_HANG_S)
    except TimeoutError:
        raise AssertionError(f"never happened: {what}") from None
