"""The rate limit per provider account and channel, shared by every worker process, with a queue per
process in front of it ordered by priority (leaders first)."""
from __future__ import annotations

import asyncio
import heapq
import itertools
import time

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError

from activities.gateways import Gateway
from config import get_settings
from store.db import session_scope
from store.messages import SendRate


GRANT_AHEAD_S = 0.05
"""A gate reserves at once the slots of the next GRANT_AHEAD_S (at most one per waiter): one at a time up to
20 sends a second, so a leader queued later overtakes everyone not yet given a slot, as before; at high rates
(a fast account, the benchmarks) a transaction per send was most of the send path's cost."""


def reserve_slot(key: str, interval_s: float, now: float | None = None, count: int = 1) -> float:
    """The account's next send slot (epoch seconds), reserved in the database: one leaky bucket for
    every worker process, so N workers send no faster than one. No burst: slots are 1/rate apart.
    `count` slots in a row: the first is returned, the others follow it interval_s apart."""
    table = SendRate.__table__
    span = interval_s * count
    for _ in range(5):
        now = time.time() if now is None else now
        with session_scope() as s:
            nxt = s.execute(update(table).where(table.c.key == key)
                            .values(next_at=_later(table.c.next_at, now) + span)
                            .returning(table.c.next_at)).scalar()
            if nxt is not None:
                return nxt - span
        try:
            with session_scope() as s:
                s.execute(table.insert().values(key=key, next_at=now + span))
            return now
        except IntegrityError:  # another process inserted it first: reserve through the update
            continue
    raise RuntimeError(f"could not reserve a send slot for {key}")


def _later(column, now: float):
    from sqlalchemy import case

    return case((column > now, column), else_=now)


class PriorityGate:
    """The account-wide rate limit (`reserve_slot`) with a queue in front of it ordered by priority.

    Each slot reserved goes to the waiter with the lowest priority number (first come among equals),
    whichever activity of this process it came from; the waiter writes its fence and then waits for
    the slot's time, so its request leaves on time whatever the database's latency. Slots are reserved
    a few at a time (those of the next GRANT_AHEAD_S: one at a time at ordinary rates; the next when the
    last one's time has come) and only while someone waits, so processes with waiters share the account's rate.
    """

    def __init__(self, rate_per_s: float, key: str = "default") -> None:
        self.rate = rate_per_s
        self.key = key
        self.loop = asyncio.get_running_loop()
        self.waiting: list[tuple[int, int, asyncio.Future]] = []
        self.seq = itertools.count()
        self.pump: asyncio.Task | None = None

    async def turn(self, priority: int) -> float:
        """The time (epoch seconds) at which this send may go."""
        fut = self.loop.create_future()
        heapq.heappush(self.waiting, (priority, next(self.seq), fut))
        if self.pump is None or self.pump.done():
            self.pump = self.loop.create_task(self._grant())
        return await fut

    async def _grant(self) -> None:
        interval = 1 / self.rate
        while self.waiting:
            count = max(1, min(len(self.waiting), int(self.rate * GRANT_AHEAD_S)))
            first = await asyncio.to_thread(reserve_slot, self.key, interval, None, count)
            for i in range(count):
                slot = first + i * interval
                while self.waiting:
                    _, _, fut = heapq.heappop(self.waiting)
                    if not fut.done():  # a cancelled waiter gives its place on
                        fut.set_result(slot)
                        break
            await asyncio.sleep(max(slot - time.time(), 0.0))


_gates: dict[tuple[str, str], PriorityGate] = {}


def rate_limit(channel: str, gateway: Gateway | None = None) -> float:
    """Sends per second on `channel`: the gateway account's own rate if it names one (`rate_per_s`), else the
    channel's (RATE_*_PER_S)."""
    s = get_settings()
    own = (getattr(gateway, "rate_per_s", None) or {}).get(channel) if gateway is not None else None
    rate = own or {"voice": s.rate_voice_per_s, "sms": s.rate_sms_per_s, "im": s.rate_im_per_s}.get(channel, 10.0)
    return max(rate, 0.001)


def gate_for(gateway: Gateway, channel: str) -> PriorityGate | None:
    """The gate of (account, channel); none for the simulator, which has no account to protect."""
    if gateway.name == "simulator":
        return None
    key = (getattr(gateway, "account", gateway.name), channel)
    gate = _gates.get(key)
    if gate is None or gate.loop is not asyncio.get_running_loop():
        gate = _gates[key] = PriorityGate(rate_limit(channel, gateway), key=f"{key[0]}:{channel}")
    return gate


def reset_gates() -> None:
    _gates.clear()

