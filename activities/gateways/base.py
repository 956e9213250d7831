"""The gateway protocol: every adapter sends one message and says what happened.

Asynchronous outcomes (delivered, busy, no answer, machine…) arrive later through
the API's webhooks; `send` reports only what the provider says at once.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import functools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, TypeVar

T = TypeVar("T")

PROVIDER_THREADS = 32
"""Threads for the providers' blocking SDK calls (Twilio, Aliyun), and so the most sends a process has at a
provider at once (activities/delivery/send.py takes one of these before it marks a row as at the gateway)."""
_provider_pool: concurrent.futures.ThreadPoolExecutor | None = None


async def provider_call(fn: Callable[..., T], *args: Any) -> T:
    """Run a provider SDK's blocking request on the providers' own threads: not on the event loop's default
    executor (min(32, cores + 4) threads, 6 on two cores), where requests a slow provider holds would make every
    other send and every database write of the activity queue behind them."""
    global _provider_pool
    if _provider_pool is None:
        _provider_pool = concurrent.futures.ThreadPoolExecutor(PROVIDER_THREADS, thread_name_prefix="provider")
    return await asyncio.get_running_loop().run_in_executor(_provider_pool, functools.partial(fn, *args))


@dataclass(frozen=True)
class OutgoingMessage:
    outbox_id: int
    idempotency_key: str
    channel: str  # sms | voice | im
    to: str
    body: str
    voice_text: str | None = None
    ack_url: str | None = None
    priority: int = 100
    created_at: datetime | None = None  # when the outbox row was claimed (reconcile looks from there)
    reply_code: str | None = None  # the message wants an answer (a voice call asks for a key)
    kind: str | None = None  # the message kind (callout.notify, login.code…): a provider's template names it
    values: dict[str, str] | None = None  # the kind's variables, for a provider that sends templates (Aliyun)


class Throttled(Exception):
    """The provider refused the send for its rate limit and created nothing: the message may go
    again, after a backoff and a new turn at the rate gate (activities/delivery/gate.py)."""


@dataclass(frozen=True)
class SendResult:
    status: str  # sent | failed | opted_out
    provider_id: str | None = None
    error: str | None = None
    accepted_at: datetime | None = None  # set by the outbox when the gateway said yes


class Gateway(Protocol):
    """An adapter that may raise `Throttled` says how often to try in all (`throttle_tries`) and the
    first wait between tries, doubled after each (`throttle_backoff_s`)."""

    name: str

    async def send(self, msg: OutgoingMessage) -> SendResult: ...

    async def reconcile(self, msg: OutgoingMessage) -> SendResult | None:
        """After a crash between marking a message as sending and recording the result:
        what the provider knows of it (None: nothing, and it must not be sent again)."""
        ...
