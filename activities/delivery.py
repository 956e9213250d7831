"""Delivery: every send goes through the outbox, exactly once, leaders first, within rate limits.

1. Rows are inserted by idempotency key (a retried activity finds them) and
   marked `sending` in one transaction *before* any gateway is asked.
2. Each channel's gateway sends them behind a rate limit per account and channel; the
   limit's queue is ordered by priority across every activity of the worker process, so
   a leader queued later overtakes everyone else still waiting.
3. Results (provider id, status) are written in one transaction.

A worker killed between 1 and 3 leaves rows in `sending`; the retry asks the
gateway what it knows (`reconcile`). A row the gateway has is recorded, never sent
again; a row it has not is sent now if the gateway's word is final (Twilio; the
simulator, whose network is the row itself), else reported as failed (an IM robot: it
cannot be asked). Either way the text sent is the row's, as first rendered.
"""
from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from aiolimiter import AsyncLimiter
from sqlmodel import col, select
from temporalio import activity

from activities.gateways import Gateway, OutgoingMessage, SendResult, Throttled, gateway_for
from config import get_settings
from store.db import session_scope
from store.messages import OutboxMessage
from store.redact import mask_text


class PriorityGate:
    """A rate limit (aiolimiter) with a queue in front of it ordered by priority.

    Each time the limiter grants a send, the waiter with the lowest priority number gets
    it (first come among equals), whichever activity it came from.
    """

    def __init__(self, rate_per_s: float) -> None:
        self.rate = rate_per_s
        self.limiter = AsyncLimiter(1, 1 / rate_per_s)  # no burst: one send every 1/rate seconds
        self.loop = asyncio.get_running_loop()
        self.waiting: list[tuple[int, int, asyncio.Future]] = []
        self.seq = itertools.count()
        self.pump: asyncio.Task | None = None

    async def turn(self, priority: int) -> None:
        fut = self.loop.create_future()
        heapq.heappush(self.waiting, (priority, next(self.seq), fut))
        if self.pump is None or self.pump.done():
            self.pump = self.loop.create_task(self._grant())
        await fut

    async def _grant(self) -> None:
        while self.waiting:
            await self.limiter.acquire()
            while self.waiting:
                _, _, fut = heapq.heappop(self.waiting)
                if not fut.done():  # a cancelled waiter gives its place on
                    fut.set_result(None)
                    break


_gates: dict[tuple[str, str], PriorityGate] = {}


def rate_limit(channel: str) -> float:
    s = get_settings()
    return max({"voice": s.rate_voice_per_s, "sms": s.rate_sms_per_s, "im": s.rate_im_per_s}.get(channel, 10.0), 0.001)


def gate_for(gateway: Gateway, channel: str) -> PriorityGate | None:
    """The gate of (account, channel); none for the simulator, which has no account to protect."""
    if gateway.name == "simulator":
        return None
    key = (getattr(gateway, "account", gateway.name), channel)
    gate = _gates.get(key)
    if gate is None or gate.loop is not asyncio.get_running_loop():
        gate = _gates[key] = PriorityGate(rate_limit(channel))
    return gate


def reset_gates() -> None:
    _gates.clear()


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


def _message(row: dict, item: "Delivery") -> OutgoingMessage:
    """What goes to the gateway: the outbox row's text when an earlier try claimed it. A retry renders
    the message again, and a new signed link would make it another text: the gateway could not
    find what it already holds (reconcile compares texts) and the person would get it twice."""
    return OutgoingMessage(outbox_id=row["id"], idempotency_key=item.key, channel=item.channel, to=item.to,
                           body=row.get("body") or item.body, voice_text=row.get("voice_text") or item.voice_text,
                           ack_url=row.get("ack_url") or item.ack_url, priority=item.priority,
                           created_at=row["created_at"])


async def _settle_uncertain(rows: list[dict], by_key: dict[str, "Delivery"], results: dict[str, SendResult]) -> list[dict]:
    """Rows left in `sending` by an earlier try: record what the gateway knows; return those to send now."""
    again: list[dict] = []
    ask = asyncio.Semaphore(8)

    async def one(row: dict) -> None:
        item = by_key[row["key"]]
        if row["provider_id"]:  # a status callback has named it already
            results[item.key] = SendResult(status="sent", provider_id=row["provider_id"])
            return
        gateway = gateway_for(item.channel)
        async with ask:
            known = await gateway.reconcile(_message(row, item))
        if known is not None:
            results[item.key] = known
        elif getattr(gateway, "resend_unknown", False):
            again.append(row)
        else:
            results[item.key] = SendResult(status="failed", error="interrupted while sending; not sent again")

    await asyncio.gather(*(one(r) for r in rows))
    return again


async def _send_at_the_gate(item: Delivery, msg: OutgoingMessage) -> SendResult:
    """One send, when the channel's rate gate gives it its turn. A send the provider throttles
    waits out a backoff and queues at the gate again, so retries count against the rate too."""
    gateway = gateway_for(item.channel)
    gate = gate_for(gateway, item.channel)
    tries, delay = getattr(gateway, "throttle_tries", 1), getattr(gateway, "throttle_backoff_s", 0.5)
    for attempt in range(1, tries + 1):
        if gate is not None:
            await gate.turn(item.priority)
        try:
            return await gateway.send(msg)
        except Throttled as exc:
            if attempt == tries:
                return SendResult(status="failed", error=f"{exc} (throttled {tries} times)")
            await asyncio.sleep(delay)
            delay *= 2
    raise AssertionError("unreachable")


async def deliver(items: list[Delivery], on_progress: Callable[[int], None] | None = None) -> list[Outcome]:
    if not items:
        return []
    rows = await asyncio.to_thread(_claim, items)
    by_key = {i.key: i for i in items}
    results: dict[str, SendResult] = {}
    uncertain = [r for r in rows.values() if r["status"] == "sending" and not r["claimed"]]
    todo = [r for r in rows.values() if r["claimed"]] + await _settle_uncertain(uncertain, by_key, results)
    todo.sort(key=lambda r: (by_key[r["key"]].priority, r["id"]))  # leaders first
    done = 0

    async def one(row: dict) -> None:
        nonlocal done
        item = by_key[row["key"]]
        try:
            results[item.key] = await _send_at_the_gate(item, _message(row, item))
        except Exception as exc:  # a gateway error is an outcome of this message, not of the batch
            results[item.key] = SendResult(status="failed", error=f"{type(exc).__name__}: {exc}"[:500])
        done += 1
        _heartbeat(f"{done}/{len(todo)}")
        if on_progress:
            on_progress(done)

    await asyncio.gather(*(one(r) for r in todo))  # queued in priority order: the gates keep it
    for key, res in results.items():  # a provider's error may quote the number; the audit trail may not
        if res.error:
            results[key] = replace(res, error=mask_text(res.error))
    await asyncio.to_thread(_record_results, results)
    out = []
    for key, row in rows.items():
        res = results.get(key)
        if res is not None:
            out.append(Outcome(key, row["id"], res.status, res.provider_id, res.error, fresh=True))
        else:
            out.append(Outcome(key, row["id"], row["status"], row["provider_id"], row["error"], fresh=False))
    return out


def _claim(items: list[Delivery]) -> dict[str, dict]:
    """Insert missing rows and mark the new ones `sending`, in one transaction (one multi-row INSERT)."""
    keys = [i.key for i in items]
    table = OutboxMessage.__table__
    fields = ("id", "idempotency_key", "status", "provider_id", "error", "created_at", "body", "ack_url", "meta")
    with session_scope() as s:
        found = s.exec(select(*(getattr(OutboxMessage, f) for f in fields)).where(
            col(OutboxMessage.idempotency_key).in_(keys))).all()
        out = {r.idempotency_key: {"key": r.idempotency_key, "id": r.id, "status": r.status, "provider_id": r.provider_id,
                                   "error": r.error, "created_at": r.created_at, "claimed": False, "body": r.body,
                                   "ack_url": r.ack_url, "voice_text": (r.meta or {}).get("voice_text")} for r in found}
        now = datetime.now(UTC)
        new = []
        for i in items:
            if i.key in out:
                continue
            meta = {**(i.meta or {}), **({"voice_text": i.voice_text} if i.voice_text else {})}
            new.append({"idempotency_key": i.key, "gateway": gateway_for(i.channel).name, "channel": i.channel,
                        "to": i.to, "person_id": i.person_id, "subject": i.subject, "workflow_id": i.workflow_id,
                        "reply_code": i.reply_code, "body": i.body, "ack_url": i.ack_url, "drill": i.drill,
                        "priority": i.priority, "status": "sending", "provider_id": None, "error": None,
                        "created_at": now, "sent_at": None, "updated_at": None, "meta": meta})
            out[i.key] = {"key": i.key, "id": None, "status": "sending", "provider_id": None, "error": None,
                          "created_at": now, "claimed": True}
        if new:
            ids = s.execute(table.insert().returning(table.c.id, sort_by_parameter_order=True), new).scalars().all()
            for row, id_ in zip(new, ids, strict=True):
                out[row["idempotency_key"]]["id"] = id_
        return out


def _record_results(results: dict[str, SendResult]) -> None:
    if not results:
        return
    with session_scope() as s:
        rows = s.exec(select(OutboxMessage).where(col(OutboxMessage.idempotency_key).in_(list(results))))
        now = datetime.now(UTC)
        for row in rows:
            res = results[row.idempotency_key]
            row.provider_id = row.provider_id or res.provider_id
            if row.status == "sending":  # a status callback may have come first: what it said stands
                row.status, row.error = res.status, res.error
            row.sent_at = now if res.status == "sent" and row.sent_at is None else row.sent_at
            row.updated_at = now
