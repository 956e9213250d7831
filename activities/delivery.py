"""Delivery: every send goes through the outbox, exactly once, leaders first, within rate limits.

1. Rows are inserted by idempotency key (a retried activity finds them) and
   marked `sending` in one transaction *before* any gateway is asked.
2. The gateway sends them in priority order, each channel behind its own rate limit.
3. Results (provider id, status) are written in one transaction.

A worker killed between 1 and 3 leaves rows in `sending`; the retry asks the
gateway what it knows (`reconcile`) and never sends such a row again.
"""
from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aiolimiter import AsyncLimiter
from sqlmodel import col, select
from temporalio import activity

from activities.gateways import OutgoingMessage, SendResult, get_gateway
from config import get_settings
from store.db import session_scope
from store.messages import OutboxMessage

_limiters: dict[str, AsyncLimiter] = {}


def limiter(channel: str) -> AsyncLimiter:
    if channel not in _limiters:
        s = get_settings()
        rate = {"voice": s.rate_voice_per_s, "sms": s.rate_sms_per_s, "im": s.rate_im_per_s}.get(channel, 10.0)
        _limiters[channel] = AsyncLimiter(max(rate, 0.001) if s.gateway != "simulator" else 1e9, 1)
    return _limiters[channel]


@dataclass
class Delivery:
    """One message to deliver (rendered by the procedure that wants it sent)."""

    key: str
    channel: str
    to: str
    body: str
    person_id: str | None = None
    subject: str | None = None
    workflow_id: str | None = None
    voice_text: str | None = None
    ack_url: str | None = None
    reply_code: str | None = None
    priority: int = 100
    drill: bool = False
    meta: dict[str, Any] | None = None


@dataclass
class Outcome:
    key: str
    outbox_id: int
    status: str
    provider_id: str | None
    error: str | None
    fresh: bool  # sent by this call (False: found already done by an earlier try)


def _heartbeat(detail: str) -> None:
    if activity.in_activity():
        activity.heartbeat(detail)


async def deliver(items: list[Delivery], on_progress: Callable[[int], None] | None = None) -> list[Outcome]:
    if not items:
        return []
    gateway = get_gateway()
    rows = await asyncio.to_thread(_claim, items, gateway.name)
    by_key = {i.key: i for i in items}
    todo = sorted((r for r in rows.values() if r["claimed"]), key=lambda r: (by_key[r["key"]].priority, r["id"]))
    uncertain = [r for r in rows.values() if r["status"] == "sending" and not r["claimed"]]
    results: dict[str, SendResult] = {}

    async def one(row: dict) -> None:
        item = by_key[row["key"]]
        msg = OutgoingMessage(outbox_id=row["id"], idempotency_key=item.key, channel=item.channel, to=item.to,
                              body=item.body, voice_text=item.voice_text, ack_url=item.ack_url, priority=item.priority)
        async with limiter(item.channel):
            try:
                results[item.key] = await gateway.send(msg)
            except Exception as exc:  # a gateway error is an outcome of this message, not of the batch
                results[item.key] = SendResult(status="failed", error=f"{type(exc).__name__}: {exc}"[:500])

    for row in uncertain:
        item = by_key[row["key"]]
        msg = OutgoingMessage(outbox_id=row["id"], idempotency_key=item.key, channel=item.channel, to=item.to, body=item.body)
        known = await gateway.reconcile(msg)
        results[item.key] = known or SendResult(status="failed", error="interrupted while sending; not sent again")

    chunk = 50
    for start in range(0, len(todo), chunk):  # leaders first: todo is in priority order
        await asyncio.gather(*(one(r) for r in todo[start:start + chunk]))
        _heartbeat(f"{min(start + chunk, len(todo))}/{len(todo)}")
        if on_progress:
            on_progress(start + chunk)
    await asyncio.to_thread(_record_results, results)
    out = []
    for key, row in rows.items():
        res = results.get(key)
        if res is not None:
            out.append(Outcome(key, row["id"], res.status, res.provider_id, res.error, fresh=True))
        else:
            out.append(Outcome(key, row["id"], row["status"], row["provider_id"], row["error"], fresh=False))
    return out


def _claim(items: list[Delivery], gateway: str) -> dict[str, dict]:
    """Insert missing rows and mark the new ones `sending`, in one transaction."""
    keys = [i.key for i in items]
    with session_scope() as s:
        existing = {r.idempotency_key: r for r in s.exec(select(OutboxMessage).where(col(OutboxMessage.idempotency_key).in_(keys)))}
        claimed = set()
        now = datetime.now(UTC)
        for i in items:
            if i.key in existing:
                continue
            row = OutboxMessage(idempotency_key=i.key, gateway=gateway, channel=i.channel, to=i.to, person_id=i.person_id,
                                subject=i.subject, workflow_id=i.workflow_id, reply_code=i.reply_code, body=i.body,
                                ack_url=i.ack_url, drill=i.drill, priority=i.priority, status="sending", created_at=now,
                                meta=i.meta or {})
            s.add(row)
            existing[i.key] = row
            claimed.add(i.key)
        s.flush()
        return {k: {"key": k, "id": r.id, "status": r.status, "provider_id": r.provider_id, "error": r.error,
                    "claimed": k in claimed} for k, r in existing.items()}


def _record_results(results: dict[str, SendResult]) -> None:
    if not results:
        return
    with session_scope() as s:
        rows = s.exec(select(OutboxMessage).where(col(OutboxMessage.idempotency_key).in_(list(results))))
        now = datetime.now(UTC)
        for row in rows:
            res = results[row.idempotency_key]
            row.status, row.provider_id, row.error = res.status, res.provider_id or row.provider_id, res.error
            row.sent_at = now if res.status == "sent" else row.sent_at
            row.updated_at = now
