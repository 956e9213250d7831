"""Sending a batch: each claimed row once through its channel's rate gate; rows an earlier attempt left at
the gateway settled with what the gateway knows (see the package's docstring)."""
from __future__ import annotations

import asyncio
import contextlib
import time
import weakref
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from temporalio import activity

from activities.delivery.gate import gate_for
from activities.delivery.outbox import (
    Claim,
    Delivery,
    Outcome,
    Superseded,
    _begin_call,
    _begin_calls,
    _claim,
    _message,
    _record_owned,
    _record_results,
    _row,
    _take_over,
)
from activities.gateways import Gateway, OutgoingMessage, SendResult, Throttled, gateway_for
from activities.gateways.base import PROVIDER_THREADS
from activities.precedence import in_background
from store.redact import mask_text


def _heartbeat(detail: str) -> None:
    if activity.in_activity():
        activity.heartbeat(detail)


def lease_s(gateway: Gateway) -> float:
    """How long a row may be at the gateway for an attempt that may still be alive: the gateway's own
    request timeout and a margin. After that its call has surely ended, answered or not."""
    return float(getattr(gateway, "timeout_s", 20.0)) + 5.0


async def _settle_uncertain(rows: list[dict], by_key: dict[str, "Delivery"], results: dict[str, SendResult],
                            claim: Claim) -> list[dict]:
    """Rows another attempt left at the gateway: wait for its answer (or its lease), then take them over
    and record what the gateway knows; return those to send now."""
    again: list[dict] = []
    ask = asyncio.Semaphore(8)

    async def one(row: dict) -> None:
        item = by_key[row["key"]]
        gateway = gateway_for(item.channel)
        if row["gateway_at"] is not None:  # the earlier attempt asked the gateway: it may still be answered
            until = row["gateway_at"] + timedelta(seconds=lease_s(gateway))
            while True:
                now_row = await asyncio.to_thread(_row, row["id"])
                if now_row["status"] != "sending":  # the earlier attempt recorded it: that stands
                    row.update(now_row, settled=True)
                    return
                if datetime.now(UTC) >= until:
                    break
                _heartbeat("waiting for an earlier attempt's send")
                await asyncio.sleep(0.5)
        if not await asyncio.to_thread(_take_over, [row], claim, True):
            row.update(await asyncio.to_thread(_row, row["id"]), settled=True)
            return
        if row["provider_id"]:  # a status callback has named it already
            results[item.key] = SendResult(status="sent", provider_id=row["provider_id"])
            return
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


class Together:
    """Group commit for one delivery's small writes (the fence before each send, the answer after it): a write
    asked for while the previous one is being committed goes into the next transaction with every other such
    write. Each caller still returns only once its own write has committed, with whether it was applied
    (`write(items)` returns the items it refused); on a busy gateway path one transaction serves many sends
    instead of one each."""

    def __init__(self, write: Callable[[list], set]) -> None:
        self.write = write
        self.queue: list[tuple[Hashable, asyncio.Future]] = []
        self.task: asyncio.Task | None = None

    async def __call__(self, item: Hashable) -> bool:
        fut = asyncio.get_running_loop().create_future()
        self.queue.append((item, fut))
        if self.task is None or self.task.done():
            self.task = asyncio.create_task(self._drain())
        return await fut

    async def _drain(self) -> None:
        while self.queue:
            batch, self.queue = self.queue, []
            try:
                refused = await asyncio.to_thread(self.write, [item for item, _ in batch])
            except Exception as exc:  # each caller meets the error as its own write's
                for _, fut in batch:
                    if not fut.done():
                        fut.set_exception(exc)
                continue
            for item, fut in batch:
                if not fut.done():
                    fut.set_result(item not in refused)


_at_provider: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = weakref.WeakKeyDictionary()


def at_provider() -> asyncio.Semaphore:
    """A send holds one of the providers' threads (gateways/base.py `provider_call`) from before its row is marked
    as at the gateway until the provider has answered: a row is marked only when its request can leave at once.
    Marked rows queued behind busy threads were lost when the worker was killed: the next attempt must treat a
    marked row as possibly sent, and where the provider cannot be asked (Aliyun voice) it is never placed again."""
    loop = asyncio.get_running_loop()
    sem = _at_provider.get(loop)
    if sem is None:
        sem = _at_provider[loop] = asyncio.Semaphore(PROVIDER_THREADS)
    return sem


async def _send_at_the_gate(item: Delivery, msg: OutgoingMessage, claim: Claim,
                            fence: Callable[[int], Awaitable[bool]] | None = None) -> SendResult | None:
    """One send, when the channel's rate gate gives it its turn; None if a newer attempt owns it now.
    A send the provider throttles waits out a backoff and queues at the gate again, so retries count
    against the rate too. `fence` marks the row as at the gateway (default: a transaction of its own)."""
    gateway = gateway_for(item.channel)
    gate = gate_for(gateway, item.channel)
    fenced = gateway.name != "simulator"  # the simulator's network is the row: nothing leaves the process
    tries, delay = getattr(gateway, "throttle_tries", 1), getattr(gateway, "throttle_backoff_s", 0.5)
    for attempt in range(1, tries + 1):
        slot = await gate.turn(item.priority) if gate is not None else 0.0
        try:
            async with at_provider() if fenced else contextlib.nullcontext():
                if fenced and not await (fence(msg.outbox_id) if fence
                                         else asyncio.to_thread(_begin_call, msg.outbox_id, claim)):
                    return None
                await asyncio.sleep(max(slot - time.time(), 0.0))
                res = await gateway.send(msg)
        except Throttled as exc:
            if attempt == tries:
                return SendResult(status="failed", error=f"{exc} (throttled {tries} times)")
            await asyncio.sleep(delay)
            delay *= 2
            continue
        return replace(res, accepted_at=datetime.now(UTC)) if res.status == "sent" else res
    raise AssertionError("unreachable")


async def deliver(items: list[Delivery], on_progress: Callable[[int], None] | None = None) -> list[Outcome]:
    """Send each item once (see the module's docstring); raises `Superseded` in a stale attempt."""
    if not items:
        return []
    claim = Claim.current()
    rows = await in_background(_claim, items, claim)  # (a batch's rows: after the answers being written)
    by_key = {i.key: i for i in items}
    results: dict[str, SendResult] = {}
    uncertain = [r for r in rows.values() if r["status"] == "sending" and not r["claimed"]]
    todo = sorted((r for r in rows.values() if r["claimed"]), key=lambda r: (by_key[r["key"]].priority, r["id"]))
    settled: set[str] = set()  # what the gateway said it holds: recorded with the simulator's rows below
    done = 0
    lost: list[str] = []
    fence = Together(lambda ids: set(ids) - _begin_calls(ids, claim))
    record = Together(lambda keys: _record_owned({k: results[k] for k in keys}, claim))

    async def one(row: dict) -> None:
        nonlocal done
        item = by_key[row["key"]]
        try:
            res = await _send_at_the_gate(item, _message(row, item), claim, fence)
        except Exception as exc:  # a gateway error is an outcome of this message, not of the batch
            res = SendResult(status="failed", error=f"{type(exc).__name__}: {exc}"[:500])
        if res is None:
            lost.append(item.key)
            return
        if res.error:  # a provider's error may quote the number; the audit trail may not
            res = replace(res, error=mask_text(res.error))
        results[item.key] = res
        if gateway_for(item.channel).name != "simulator":  # recorded at once: a retry must find it
            if not await record(item.key):
                lost.append(item.key)
        done += 1
        _heartbeat(f"{done}/{len(todo)}")
        if on_progress:
            on_progress(done)

    async def settle_then_send() -> None:
        """Rows another attempt left at the gateway, beside the sends of this one: waiting for them
        holds up nothing else."""
        found: dict[str, SendResult] = {}
        again = await _settle_uncertain(uncertain, by_key, found, claim)
        settled.update(found)
        results.update(found)
        todo.extend(again)
        await asyncio.gather(*(one(r) for r in again))

    # queued in priority order (leaders first): the gates keep it
    await asyncio.gather(*(one(r) for r in list(todo)), settle_then_send())
    rest = {k: r for k, r in results.items() if k in settled or gateway_for(by_key[k].channel).name == "simulator"}
    if rest and not await in_background(_record_results, rest, claim):
        lost.append("simulator rows")
    if lost:
        raise Superseded(f"{len(lost)} of {len(items)} messages are another attempt's now")
    return _outcomes(rows, results)


def _outcomes(rows: dict[str, dict], results: dict[str, SendResult]) -> list[Outcome]:
    """One outcome per row: what the gateway said now, else what an earlier try recorded."""
    out = []
    for key, row in rows.items():
        res = results.get(key)
        if res is not None:
            out.append(Outcome(key, row["id"], res.status, res.provider_id, res.error, fresh=True,
                               accepted_at=res.accepted_at))
        else:
            out.append(Outcome(key, row["id"], row["status"], row["provider_id"], row["error"], fresh=False,
                               accepted_at=row.get("sent_at")))
    return out
