"""The benches' Twilio: a lean HTTP/1.1 client that sends requests encoded ahead of time over kept-alive connections.

Twilio's requests come from outside a district's machine; on the bench they come from the same two cores as the API,
the worker and Temporal, so what the client spends is taken from the API. With aiohttp the bench spent 0.49 ms of
CPU per request at 1,000 requests/s (`bench/api_load.py`, its client and board watcher together), with this client
0.26 ms: each request is encoded once, before the clock starts, and per request the client only writes its bytes
and reads the status line, the headers and the body (Content-Length or chunked).

A request whose connection the server had closed (uvicorn closes a connection idle for 5 s) is sent once more on a
new connection, as Twilio does on a failed connection; a second failure is raised.
"""
from __future__ import annotations

import asyncio
from urllib.parse import urlencode, urlsplit


class RawClient:
    """At most `limit` connections to one server (`base`, http://host:port); `send` takes an `encode`d request."""

    def __init__(self, base: str, limit: int = 512, timeout: float = 60) -> None:
        url = urlsplit(base)
        self.host, self.port = url.hostname or "127.0.0.1", url.port or 80
        self.idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
        self.slots = asyncio.Semaphore(limit)
        self.timeout = timeout  # per request, as aiohttp's total timeout was
        self.resent = 0  # requests sent again after a closed connection

    def encode(self, url: str, form: dict[str, str], headers: dict[str, str] | None = None) -> bytes:
        """A form POST to `url` (on this client's server), as bytes ready to write."""
        parts = urlsplit(url)
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        body = urlencode(form).encode()
        lines = [f"POST {target} HTTP/1.1", f"Host: {parts.netloc}",
                 "Content-Type: application/x-www-form-urlencoded", f"Content-Length: {len(body)}",
                 *(f"{k}: {v}" for k, v in (headers or {}).items())]
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + body

    async def send(self, request: bytes) -> tuple[int, bytes]:
        """Send one encoded request; its status and body."""
        async with self.slots:
            for attempt in (1, 2):
                reused = attempt == 1 and bool(self.idle)  # sent again: on a new connection, not another idle one
                reader, writer = self.idle.pop() if reused else await asyncio.open_connection(self.host, self.port)
                try:
                    writer.write(request)
                    status, body, keep = await asyncio.wait_for(_response(reader), self.timeout)
                except TimeoutError:
                    writer.close()
                    raise
                except (ConnectionError, asyncio.IncompleteReadError):
                    writer.close()
                    if attempt == 2 or not reused:
                        raise
                    self.resent += 1
                    continue
                if keep:
                    self.idle.append((reader, writer))
                else:
                    writer.close()
                return status, body
        raise AssertionError("unreachable")

    async def close(self) -> None:
        for _, writer in self.idle:
            writer.close()
        self.idle.clear()


async def _response(reader: asyncio.StreamReader) -> tuple[int, bytes, bool]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = {}
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip().lower()
    if headers.get("transfer-encoding") == "chunked":
        body = b""
        while size := int((await reader.readuntil(b"\r\n"))[:-2].split(b";")[0], 16):
            body += (await reader.readexactly(size + 2))[:-2]
        await reader.readuntil(b"\r\n")  # the (empty) trailer
    else:
        body = await reader.readexactly(int(headers.get("content-length", "0")))
    return status, body, headers.get("connection") != "close"
