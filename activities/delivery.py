"""Delivery: every send goes through the outbox, exactly once, leaders first, within rate limits.

1. Rows are inserted by idempotency key (a retried activity finds them) and
   marked `sending` in one transaction *before* any gateway is asked, claimed by the
   activity attempt (`claim_by`, `claim_attempt`): a fencing token.
2. Each channel's gateway sends them behind a rate limit per account and channel, shared by
   every worker process (`send_rate` in the database: each send reserves the account's next
   slot); in front of it a queue per process ordered by priority, so a leader queued later
   overtakes everyone else still waiting in that process.
3. Just before asking a real gateway, the attempt marks the row (`gateway_at`) if it still
   owns it; right after, it records the result if it still owns it. The simulator's rows
   (nothing leaves the process) are recorded in one transaction at the end.

Two attempts of one activity never both ask the gateway for a message: a retry (Temporal
gave up on the first attempt's heartbeats, though it may still be alive, on a starved
machine) takes over the rows not yet at the gateway, so the stale attempt's mark fails and
it sends nothing more and records nothing; a row already at the gateway stays the stale
attempt's until it records the answer, or until the gateway's own timeout has surely passed
(`lease_s`), after which the retry asks the gateway what it knows (`reconcile`). A row the
gateway has is recorded, never sent again; a row it has not is sent now if the gateway's
word is final (Twilio; the simulator, whose network is the row itself), else reported as
failed (an IM robot: it cannot be asked). Either way the text sent is the row's, as first
rendered. A stale attempt ends with `Superseded` before it writes anything else.
"""
from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, or_, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.gateways import Gateway, OutgoingMessage, SendResult, Throttled, gateway_for
from config import get_settings
from store.db import session_scope
from store.messages import OutboxMessage, SendRate
from store.redact import mask_text


class Superseded(ApplicationError):
    """A newer attempt of this activity owns the rows: this one stops (Temporal ignores its result anyway)."""

    def __init__(self, detail: str) -> None:
        super().__init__(f"superseded by a newer attempt: {detail}"[:300], type="Superseded")


def reserve_slot(key: str, interval_s: float, now: float | None = None) -> float:
    """The account's next send slot (epoch seconds), reserved in the database: one leaky bucket for
    every worker process, so N workers send no faster than one. No burst: slots are 1/rate apart."""
    table = SendRate.__table__
    for _ in range(5):
        now = time.time() if now is None else now
        with session_scope() as s:
            nxt = s.execute(update(table).where(table.c.key == key)
                            .values(next_at=_later(table.c.next_at, now) + interval_s)
                            .returning(table.c.next_at)).scalar()
            if nxt is not None:
                return nxt - interval_s
        try:
            with session_scope() as s:
                s.execute(table.insert().values(key=key, next_at=now + interval_s))
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
    one at a time (the next when the last one's time has come) and only while someone waits, so
    processes with waiters share the account's rate.
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
        while self.waiting:
            slot = await asyncio.to_thread(reserve_slot, self.key, 1 / self.rate)
            while self.waiting:
                _, _, fut = heapq.heappop(self.waiting)
                if not fut.done():  # a cancelled waiter gives its place on
                    fut.set_result(slot)
                    break
            await asyncio.sleep(max(slot - time.time(), 0.0))


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
        gate = _gates[key] = PriorityGate(rate_limit(channel), key=f"{key[0]}:{channel}")
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
    accepted_at: datetime | None = None  # when the gateway accepted it (the answer window starts there)


@dataclass(frozen=True)
class Claim:
    """The fencing token of one activity attempt (outside an activity: one try of its own)."""

    by: str
    attempt: int

    @classmethod
    def current(cls) -> "Claim":
        if activity.in_activity():
            info = activity.info()
            return cls(f"{info.workflow_id}/{info.workflow_run_id}/{info.activity_id}", info.attempt)
        return cls("local", 1)


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


async def _send_at_the_gate(item: Delivery, msg: OutgoingMessage, claim: Claim) -> SendResult | None:
    """One send, when the channel's rate gate gives it its turn; None if a newer attempt owns it now.
    A send the provider throttles waits out a backoff and queues at the gate again, so retries count
    against the rate too."""
    gateway = gateway_for(item.channel)
    gate = gate_for(gateway, item.channel)
    fenced = gateway.name != "simulator"  # the simulator's network is the row: nothing leaves the process
    tries, delay = getattr(gateway, "throttle_tries", 1), getattr(gateway, "throttle_backoff_s", 0.5)
    for attempt in range(1, tries + 1):
        slot = await gate.turn(item.priority) if gate is not None else 0.0
        if fenced and not await asyncio.to_thread(_begin_call, msg.outbox_id, claim):
            return None
        await asyncio.sleep(max(slot - time.time(), 0.0))
        try:
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
    rows = await asyncio.to_thread(_claim, items, claim)
    by_key = {i.key: i for i in items}
    results: dict[str, SendResult] = {}
    uncertain = [r for r in rows.values() if r["status"] == "sending" and not r["claimed"]]
    todo = sorted((r for r in rows.values() if r["claimed"]), key=lambda r: (by_key[r["key"]].priority, r["id"]))
    settled: set[str] = set()  # what the gateway said it holds: recorded with the simulator's rows below
    done = 0
    lost: list[str] = []

    async def one(row: dict) -> None:
        nonlocal done
        item = by_key[row["key"]]
        try:
            res = await _send_at_the_gate(item, _message(row, item), claim)
        except Exception as exc:  # a gateway error is an outcome of this message, not of the batch
            res = SendResult(status="failed", error=f"{type(exc).__name__}: {exc}"[:500])
        if res is None:
            lost.append(item.key)
            return
        if res.error:  # a provider's error may quote the number; the audit trail may not
            res = replace(res, error=mask_text(res.error))
        results[item.key] = res
        if gateway_for(item.channel).name != "simulator":  # recorded at once: a retry must find it
            if not await asyncio.to_thread(_record_results, {item.key: res}, claim):
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
    if rest and not await asyncio.to_thread(_record_results, rest, claim):
        lost.append("simulator rows")
    if lost:
        raise Superseded(f"{len(lost)} of {len(items)} messages are another attempt's now")
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


_FIELDS = ("id", "idempotency_key", "status", "provider_id", "error", "created_at", "body", "ack_url", "meta",
           "claim_by", "claim_attempt", "gateway_at", "sent_at")


def _as_dict(r) -> dict:
    return {"key": r.idempotency_key, "id": r.id, "status": r.status, "provider_id": r.provider_id, "error": r.error,
            "created_at": r.created_at, "claimed": False, "body": r.body, "ack_url": r.ack_url,
            "voice_text": (r.meta or {}).get("voice_text"), "claim_by": r.claim_by, "claim_attempt": r.claim_attempt,
            "gateway_at": r.gateway_at, "sent_at": r.sent_at}


def _row(outbox_id: int) -> dict:
    with session_scope(write=False) as s:
        r = s.exec(select(*(getattr(OutboxMessage, f) for f in _FIELDS)).where(OutboxMessage.id == outbox_id)).one()
        return _as_dict(r)


def _claim(items: list[Delivery], claim: Claim | None = None) -> dict[str, dict]:
    """Insert missing rows claimed by this attempt and mark them `sending`, in one transaction (one
    multi-row INSERT); take over the rows an earlier attempt claimed and never took to the gateway."""
    claim = claim or Claim.current()
    keys = [i.key for i in items]
    table = OutboxMessage.__table__
    with session_scope() as s:
        found = s.exec(select(*(getattr(OutboxMessage, f) for f in _FIELDS)).where(
            col(OutboxMessage.idempotency_key).in_(keys))).all()
        out = {r.idempotency_key: _as_dict(r) for r in found}
        newer = [r for r in out.values() if r["status"] == "sending" and r["claim_by"] == claim.by
                 and (r["claim_attempt"] or 0) > claim.attempt]
        if newer:
            raise Superseded(f"attempt {newer[0]['claim_attempt']} claimed the messages")
        ours = [r["id"] for r in out.values() if r["status"] == "sending" and r["claim_by"] is not None
                and r["gateway_at"] is None]
        if ours:
            taken = set(s.execute(update(table).where(
                col(table.c.id).in_(ours), table.c.status == "sending", table.c.gateway_at.is_(None),
                or_(table.c.claim_by != claim.by, table.c.claim_attempt <= claim.attempt))
                .values(claim_by=claim.by, claim_attempt=claim.attempt).returning(table.c.id)).scalars())
            for r in out.values():
                if r["id"] in taken:
                    r["claimed"], r["claim_by"], r["claim_attempt"] = True, claim.by, claim.attempt
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
                        "created_at": now, "sent_at": None, "updated_at": None, "meta": meta,
                        "claim_by": claim.by, "claim_attempt": claim.attempt, "gateway_at": None})
            out[i.key] = {"key": i.key, "id": None, "status": "sending", "provider_id": None, "error": None,
                          "created_at": now, "claimed": True, "claim_by": claim.by, "claim_attempt": claim.attempt,
                          "gateway_at": None, "sent_at": None}
        if new:
            ids = s.execute(table.insert().returning(table.c.id, sort_by_parameter_order=True), new).scalars().all()
            for row, id_ in zip(new, ids, strict=True):
                out[row["idempotency_key"]]["id"] = id_
        return out


def _owned(table, claim: Claim):
    return and_(table.c.status == "sending", table.c.claim_by == claim.by, table.c.claim_attempt == claim.attempt)


def _begin_call(outbox_id: int, claim: Claim) -> bool:
    """Mark the row as at the gateway, if this attempt still owns it (the fence before the gateway)."""
    table = OutboxMessage.__table__
    with session_scope() as s:
        return s.execute(update(table).where(table.c.id == outbox_id, _owned(table, claim))
                         .values(gateway_at=datetime.now(UTC))).rowcount == 1


def _take_over(rows: list[dict], claim: Claim, at_gateway: bool = False) -> bool:
    """Claim rows another attempt left (still `sending`, as last seen): all or nothing."""
    table = OutboxMessage.__table__
    with session_scope() as s:
        for r in rows:
            same = and_(table.c.id == r["id"], table.c.status == "sending",
                        table.c.claim_by.is_(None) if r["claim_by"] is None else table.c.claim_by == r["claim_by"],
                        table.c.claim_attempt.is_(None) if r["claim_attempt"] is None
                        else table.c.claim_attempt == r["claim_attempt"])
            if s.execute(update(table).where(same).values(claim_by=claim.by, claim_attempt=claim.attempt)).rowcount != 1:
                s.rollback()
                return False
    return True


def _record_results(results: dict[str, SendResult], claim: Claim | None = None) -> bool:
    """Write the gateway's answers on the rows this attempt owns; False if some belong to another now."""
    if not results:
        return True
    claim = claim or Claim.current()
    all_ours = True
    with session_scope() as s:
        rows = s.exec(select(OutboxMessage).where(col(OutboxMessage.idempotency_key).in_(list(results)))
                      .with_for_update())
        now = datetime.now(UTC)
        for row in rows:
            res = results[row.idempotency_key]
            if row.claim_by is not None and (row.claim_by, row.claim_attempt) != (claim.by, claim.attempt):
                all_ours = False  # a newer attempt took it over: what it records stands
                continue
            row.provider_id = row.provider_id or res.provider_id
            if row.status == "sending":  # a status callback may have come first: what it said stands
                row.status, row.error = res.status, res.error
            if res.status == "sent" and row.sent_at is None:
                row.sent_at = res.accepted_at or now
            row.updated_at = now
    return all_ours
