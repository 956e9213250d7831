"""How `yingji api` runs uvicorn: whose forwarded headers it believes, and how long a client may
take to send a request's headers.

- **Forwarded headers** (`X-Forwarded-For`, `-Proto`) are believed only from the reverse proxies
  named in `YINGJI_TRUSTED_PROXIES` (addresses or CIDR networks; default: none, and uvicorn's
  proxy-header handling is off). Otherwise anyone on the host could rotate `X-Forwarded-For` to
  get a fresh rate-limit bucket per request (uvicorn trusts 127.0.0.1 by default). With
  proxies named, uvicorn takes the client address from the right of `X-Forwarded-For`,
  skipping the trusted hops (docs/reverse-proxy.md).
- **Slow headers.** uvicorn (h11) starts no timer before a connection's first request, and any
  byte of a request cancels its keep-alive timer, so a client that sends its headers a byte at
  a time holds a connection for ever (3,000 such sockets stayed open). `GuardedH11Protocol`
  gives each request head `YINGJI_HEADER_TIMEOUT_S` (10 s) from the connection or from the
  request's first byte, then closes the connection. Headers are also bounded in size by h11
  (16 kB, `h11_max_incomplete_event_size`) and bodies by `api/security.py`. A reverse proxy in
  front (nginx `client_header_timeout`, `client_body_timeout`) is the place for finer limits.
"""
from __future__ import annotations

import asyncio
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a deadline for each request's head."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        from config import get_settings

        self.head_timeout = get_settings().header_timeout_s
        self.head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        self._watch_head()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._watch_head(arm=False)  # idle between requests: the keep-alive timeout's business

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _waiting_for_head(self) -> bool:
        return self.conn.their_state is h11.IDLE and not self.transport.is_closing()

    def _watch_head(self, arm: bool = True) -> None:
        """Bytes came while no request head is complete (their state IDLE): the head's deadline runs,
        from the connection or from the first of these bytes; once the request line and headers
        are in (their state moves on), it stops."""
        if not self._waiting_for_head():
            self._disarm()
        elif arm and self.head_timer is None:
            self._arm()

    def _arm(self) -> None:
        self._disarm()
        self.head_timer = self.loop.call_later(self.head_timeout, self._head_timed_out)

    def _disarm(self) -> None:
        if self.head_timer is not None:
            self.head_timer.cancel()
            self.head_timer = None

    def _head_timed_out(self) -> None:
        self.head_timer = None
        if self._waiting_for_head():
            self.logger.info("closing a connection whose request headers did not arrive within %.0f s",
                             self.head_timeout)
            self.transport.close()


def uvicorn_options(settings) -> dict[str, Any]:
    """The keyword arguments `yingji api` gives `uvicorn.run` (besides the app, host and port)."""
    proxies = settings.trusted_proxy_list
    return {
        "proxy_headers": bool(proxies),
        "forwarded_allow_ips": ",".join(proxies) if proxies else "",
        "http": GuardedH11Protocol,
        "timeout_keep_alive": 5,
        "h11_max_incomplete_event_size": 16 * 1024,
    }
