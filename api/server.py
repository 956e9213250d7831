"""How `yingji api` runs uvicorn: whose forwarded headers it believes, and how long a client may
take to send a request's headers.

- **Forwarded headers** (`X-Forwarded-For`, `-Proto`) are believed only from the reverse proxies
  named in `YINGJI_TRUSTED_PROXIES` (addresses or CIDR networks; default: none, and uvicorn's
  proxy-header handling is off). Otherwise anyone on the host could rotate `X-Forwarded-For` to
  get a fresh rate-limit bucket per request (uvicorn trusts 127.0.0.1 by default). With
  proxies named, uvicorn takes the client address from the right of `X-Forwarded-For`,
  skipping the trusted hops (docs/reverse-proxy.md).
- **Slow headers.** uvicorn starts no timer before a connection's first request, and any byte of a
  request cancels its keep-alive timer, so a client that sends its headers a byte at a time holds a
  connection for ever (3,000 such sockets stayed open). `GuardedHttpToolsProtocol` gives each request
  head `YINGJI_HEADER_TIMEOUT_S` (10 s) from the connection or from the request's first byte, then
  closes the connection. A request head over 16 kB (its line and headers) is answered 400 and the
  connection closed (uvicorn's answer to a request it cannot parse); bodies are bounded by `api/security.py`. A reverse proxy in front (nginx
  `client_header_timeout`, `client_body_timeout`) is the place for finer limits.
- **httptools, not h11.** uvicorn's C parser (llhttp): the pure-Python h11 was ~8 % of the API's CPU
  under a burst of webhooks (bench/api_load.py --profile). llhttp bounds nothing by itself, hence the
  head's size bound above (h11 had one: `h11_max_incomplete_event_size`).
"""
from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

MAX_HEAD = 16 * 1024


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a deadline and a size bound for each request's head."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        from config import get_settings

        self.head_timeout = get_settings().header_timeout_s
        self.head_timer: asyncio.TimerHandle | None = None
        self.head_size = 0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()  # the first request's head is due from the connection

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    # the parser's callbacks: a head begins, grows, is complete
    def on_message_begin(self) -> None:
        super().on_message_begin()
        self.head_size = 0
        if self.head_timer is None:
            self._arm()

    def on_url(self, url: bytes) -> None:
        self._grow(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._grow(len(name) + len(value) + 4)
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._disarm()  # between requests, the keep-alive timeout's business
        super().on_headers_complete()

    def _grow(self, n: int) -> None:
        self.head_size += n
        if self.head_size > MAX_HEAD:
            import httptools

            self.logger.info("refusing a request whose head is over %d bytes", MAX_HEAD)
            raise httptools.HttpParserCallbackError("request head too large")

    def _arm(self) -> None:
        self._disarm()
        self.head_timer = self.loop.call_later(self.head_timeout, self._head_timed_out)

    def _disarm(self) -> None:
        if self.head_timer is not None:
            self.head_timer.cancel()
            self.head_timer = None

    def _head_timed_out(self) -> None:
        self.head_timer = None
        if not self.transport.is_closing():
            self.logger.info("closing a connection whose request headers did not arrive within %.0f s",
                             self.head_timeout)
            self.transport.close()


def uvicorn_options(settings) -> dict[str, Any]:
    """The keyword arguments `yingji api` gives `uvicorn.run` (besides the app, host and port)."""
    proxies = settings.trusted_proxy_list
    return {
        "proxy_headers": bool(proxies),
        "forwarded_allow_ips": ",".join(proxies) if proxies else "",
        "http": GuardedHttpToolsProtocol,
        "timeout_keep_alive": 5,
    }
