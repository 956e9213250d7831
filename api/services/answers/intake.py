"""Answers stored first (store/intake.py), then processed: what the webhook for SMS replies and the signed
link's confirm button do with what a person sent.

`Intake.answer` writes the answer (one commit for all that arrive together) and hands it to this process's
processor, which takes everything waiting at once: SMS replies matched together (one transaction), answers to
the same workflow in one signal, late answers in one transaction. The request waits for its answer's outcome
up to `YINGJI_ANSWER_WAIT_S` and says what became of it; past that (a burst beyond what the process can match
in time) it answers at once that the answer is stored, and the processor goes on. Past
`YINGJI_ANSWER_MAX_PENDING` answers waiting to be stored, or with the database failing, nothing is taken: 503
with Retry-After, and the gateway sends it again (docs/gateways.md says which gateway retries what).

An answer stored whose processing fails (Temporal down, the database busy) or whose API process dies is
processed again by whichever API process finds its claim stale (`YINGJI_ANSWER_RETRY_S`), from the start:
everything on the way is idempotent (the SMS by its provider id, the answer by its ref, the link by its id).
"""
from __future__ import annotations

import asyncio
import os
import socket
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from temporalio.client import Client

from api.services.answers.acks import AnswerError, acknowledge
from store.group import GroupCommit
from api.services.answers.sms import sms_reply
from store import intake as store
from store.db import session_scope
from store.links import LinkError, consume_many

log = structlog.get_logger("yingji.intake")


class IntakeRefused(Exception):
    """Nothing was stored: the caller answers 503 with Retry-After and the gateway sends it again."""

    retry_after = 5


@dataclass
class Item:
    id: int
    kind: str
    payload: dict[str, Any]
    at: datetime
    outcome: asyncio.Future | None = None  # a request waiting for it (None: taken up again by the sweeper)


class Intake:
    """One per API process (app.state.intake)."""

    def __init__(self, temporal: Callable[[], Awaitable[Client | None]], settings) -> None:
        self.temporal = temporal
        self.settings = settings
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.storing = GroupCommit(self._store_many)
        self.spending = GroupCommit(_spend_links)  # the links of the answers processed together, spent together
        self.queue: list[Item] = []
        self.inflight: set[int] = set()  # ids queued or being processed here: their claims are kept fresh
        self.processing = False
        self.drainer: asyncio.Task | None = None
        self.sweeper: asyncio.Task | None = None

    # ------------------------------------------------------------------ the request's side

    async def answer(self, kind: str, payload: dict[str, Any], at: datetime | None = None) -> dict | None:
        """Store the answer, then wait (at most `answer_wait_s`) for what became of it: its outcome, or None when it
        is stored and still being processed. IntakeRefused: not stored."""
        if len(self.storing) >= self.settings.answer_max_pending:
            raise IntakeRefused(f"{len(self.storing)} answers are waiting to be stored")
        at = at or datetime.now(UTC)
        try:
            item = await self.storing.submit((kind, payload, at))
        except Exception as exc:  # noqa: BLE001 - the database refused: nothing is stored, the gateway retries
            log.warning("answer not stored", kind=kind, error=str(exc))
            raise IntakeRefused(f"the answer could not be stored: {type(exc).__name__}") from exc
        if len(self.queue) >= self.settings.answer_max_pending:  # far behind: the sweeper takes it up, from the table
            return None
        self._enqueue([item])
        try:
            return await asyncio.wait_for(asyncio.shield(item.outcome), self.settings.answer_wait_s)
        except TimeoutError:
            return None
        except Exception:  # noqa: BLE001 - processing failed (Temporal down…): stored, taken up again later
            return None

    def _store_many(self, items: list[tuple[str, dict, datetime]]) -> list[Item]:
        with session_scope() as s:
            ids = store.store(s, items, self.owner)
        return [Item(id=i, kind=k, payload=p, at=at) for i, (k, p, at) in zip(ids, items, strict=True)]

    # ------------------------------------------------------------------ processing

    def _enqueue(self, items: list[Item]) -> None:
        for item in items:
            if item.outcome is None:
                item.outcome = asyncio.get_running_loop().create_future()
            self.inflight.add(item.id)
        self.queue.extend(items)
        if not self.processing:
            self.processing = True
            self.drainer = asyncio.create_task(self._drain())  # kept: the loop holds tasks only weakly

    async def _drain(self) -> None:
        try:
            while self.queue:
                batch, self.queue = self.queue[:2000], self.queue[2000:]
                await self._process(batch)
        finally:
            self.processing = False

    async def _process(self, batch: list[Item]) -> None:
        """Everything waiting at once: the SMS replies are matched in one transaction (sms_reply's group
        commit), answers to one workflow go in one signal, late answers in one transaction; the done ones are
        marked in one more."""
        client = await self.temporal()
        try:
            if client is None:
                results: list[Any] = [RuntimeError("Temporal is not reachable")] * len(batch)
            else:
                results = await asyncio.gather(*(self._one(client, item) for item in batch), return_exceptions=True)
        finally:
            self.inflight.difference_update(item.id for item in batch)
        done: dict[int, dict] = {}
        for item, result in zip(batch, results, strict=True):
            if isinstance(result, BaseException):
                log.info("answer not processed yet; taken up again", id=item.id, kind=item.kind, error=str(result))
                if item.outcome is not None and not item.outcome.done():
                    item.outcome.set_exception(result)
                    item.outcome.exception()  # retrieved: nobody need be waiting for it
                continue
            done[item.id] = result
            if item.outcome is not None and not item.outcome.done():
                item.outcome.set_result(result)
        if done:
            try:
                await asyncio.to_thread(self._finish, done)
            except Exception as exc:  # noqa: BLE001 - processed but not marked: processed again later (idempotent)
                log.warning("answers processed but not marked done", n=len(done), error=str(exc))

    @staticmethod
    def _finish(done: dict[int, dict]) -> None:
        with session_scope() as s:
            store.finish(s, done)

    async def _one(self, client: Client, item: Item) -> dict:
        p = item.payload
        if item.kind == "sms":
            try:
                return await sms_reply(client, p["gateway"], p["from"], p["body"], provider_id=p.get("provider_id"),
                                       at=item.at)
            except AnswerError as exc:  # nothing waits for it: stored in the inbox as such, nothing to say back
                return {"handled": "unmatched", "error": str(exc)}
        if item.kind == "link":
            return await self._link(client, p, item.at)
        raise ValueError(f"unknown answer kind {item.kind!r}")

    async def _link(self, client: Client, data: dict, at: datetime) -> dict:
        """A signed link's confirmation: answered first, then the link spent, with the other links processed
        together (an answer is idempotent by the link's id). {"recorded": …, "households": …} or
        {"error": "used" | "not_called", "message": …}."""
        n = data.get("households")
        try:
            answered = await acknowledge(client, data["s"], data["p"], "link", ref=f"link:{data['j']}", households=n,
                                         at=at)
        except AnswerError as exc:
            return {"error": "not_called", "message": str(exc)}
        refused = await self.spending.submit(data)
        if refused is not None:
            return {"error": refused.reason, "message": str(refused)}
        return {"recorded": answered.recorded, "households": n}

    # ------------------------------------------------------------------ the sweeper

    def start(self) -> None:
        self.sweeper = asyncio.create_task(self._sweep())

    async def stop(self) -> None:
        if self.sweeper is not None:
            self.sweeper.cancel()
            try:
                await self.sweeper
            except asyncio.CancelledError:
                pass

    async def sweep_once(self) -> int:
        """Take up the answers stored but not processed (their claim stale) and process them now."""
        stale = timedelta(seconds=self.settings.answer_retry_s)

        inflight = sorted(self.inflight)

        def claim() -> list[Item]:
            with session_scope() as s:
                store.renew(s, self.owner, inflight)  # still ours: a long backlog here is not a dead process
                return [Item(id=r.id, kind=r.kind, payload=r.payload, at=r.received_at)
                        for r in store.claim_stale(s, self.owner, stale) if r.id not in self.inflight]

        items = await asyncio.to_thread(claim)
        if items:
            log.info("answers taken up again", n=len(items))
            await self._process(items)
        return len(items)

    async def _sweep(self) -> None:
        purged = 0.0
        while True:
            try:
                while await self.sweep_once():
                    pass
                if time.monotonic() - purged > PURGE_EVERY_S:
                    purged = time.monotonic()
                    await asyncio.to_thread(_purge)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - the database down: try again at the next round
                log.warning("intake sweep failed", error=str(exc))
            await asyncio.sleep(min(self.settings.answer_retry_s / 3, 5.0))


PURGE_EVERY_S = 600
KEEP_DONE = timedelta(days=7)


def _purge() -> None:
    with session_scope() as s:
        store.purge_done(s, KEEP_DONE)


def _spend_links(links: list[dict]) -> list[LinkError | None]:
    with session_scope() as s:
        return consume_many(s, links)
