"""The persons who answer a bench call-out: each replies "1" by SMS, a signed Twilio webhook over HTTP to a `yingji api`
process (bench/http_api.py), as a phone's reply comes; and when each answer was shown on the board (stored and matched
by the API) and when it was recorded there (acknowledged by its shard, or by the API's store for an ended one).

Two shapes of answering:

- a burst (`burst`): every reply after the last first notification, as fast as the API answers (256 in flight) or
  in a steady stream of `ack_rate` a second. Most persons' waits have run out by then at 100,000, so most replies
  are late answers (逾时应答), recorded by the API's store;
- following the sends (`follow`, `--reply-after S`): each person replies S·(0.5 … 1.5) seconds after their own SMS
  was sent (the outbox's `sent_at`), spread evenly over that range, while the others are still being notified. This
  is a district's night: the answers come as the phones ring, to shards still waiting, while the worker sends.
"""
from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta

from bench.http_api import Api, shown_stamps, signed, watch_board
from bench.raw_http import RawClient

GOLDEN = 0.6180339887498949  # i·GOLDEN mod 1 spreads the persons' delays evenly, the same on every run
IN_FLIGHT = 256  # replies waiting for their answer at once, at most
OVERLAP_S = 2.0  # how far before the oldest unsent row (or the newest row) the outbox is read again
STUCK_S = 10.0  # read whole when nothing new has been found for this long while some persons still wait


def spread(items: list) -> list:
    """`items` in an order spread evenly over them (i·GOLDEN mod 1), the same on every run: the call-out's first
    targets (the board page's persons) answer throughout a burst, not at its head."""
    return [item for _, _, item in sorted(((i * GOLDEN) % 1, i, item) for i, item in enumerate(items))]


class Phones:
    """The persons in `acked` answer a call-out; `sent_at` and `visible` are monotonic seconds per person."""

    def __init__(self, stack, acked: list[str], every_row: bool = False) -> None:
        self.acked = acked
        self.every_row = every_row  # the board watched takes every row, else it is a page of the console
        self.page: dict = {"persons": None}  # the persons on the page watched (None: every row), once it is open
        self.api = Api(stack)
        self.sent_at: dict[str, float] = {}
        self.visible: dict[str, float] = {}
        self.stamped: dict[str, float] = {}  # epoch seconds: each answer's row stamped (`stored_at`), read afterwards
        self.recorded: dict[str, float] = {}  # when each was first seen acknowledged (recorded, not only stored)
        self.committed: dict[str, float] = {}  # epoch seconds: the commit that showed it (PostgreSQL; shown_stamps)
        self.watch_cost: dict[str, float] = {}  # the board's stream: events, rows and bytes received
        self.wall_minus_mono = time.time() - time.monotonic()  # the intake's UTC stamps on the bench's clock

    async def open(self) -> None:
        """The API up (before intake, when the replies follow the sends: its start is not the worker's time)."""
        await asyncio.to_thread(self.api.start)
        self.client = RawClient(self.api.base, limit=IN_FLIGHT, timeout=120)  # lean: bench/raw_http.py
        self.slots = asyncio.Semaphore(IN_FLIGHT)

    async def watch_board(self, cid: str) -> None:
        """Call-out `cid`'s board watched as a duty officer's browser watches it: the console's first page and its
        live stream from this API (bench/http_api.py `watch_board`; every row with `every_row`), awaited until its
        first tick has come. "Shown" is what a duty officer sees, for the persons on the page (`watched`); the
        system's own part is read from the answers' rows afterwards (`stamped`, `committed`)."""
        self.cid, self.watching, ready = cid, asyncio.Event(), asyncio.Event()
        self.watcher = asyncio.create_task(watch_board(self.api.base, cid, self.visible, self.watching,
                                                       recorded=self.recorded, ready=ready,
                                                       page=None if self.every_row else self.page))
        await ready.wait()

    def _reply(self, pid: str, number: str) -> bytes:
        return self.client.encode(*signed(self.api.base, "/api/webhooks/twilio/sms", {
            "MessageSid": f"SMbench{pid}", "SmsSid": f"SMbench{pid}", "From": number, "To": "+15005550006",
            "Body": "1", "NumMedia": "0", "AccountSid": "AC" + "b" * 32, "SmsStatus": "received",
            "ApiVersion": "2010-04-01"}))

    async def _send(self, pid: str, request: bytes) -> None:
        async with self.slots:  # stamped as it leaves, not while it waits for a connection
            self.sent_at[pid] = time.monotonic()
            status, body = await self.client.send(request)
        if status != 200:
            raise RuntimeError(f"reply of {pid}: {status} {body[:200].decode(errors='replace')}")

    async def burst(self, number: dict[str, str], ack_rate: float | None) -> None:
        """Everyone in `acked` replies now: as fast as answered, or the i-th at its time in a stream of `ack_rate`/s;
        in an order spread evenly over the persons (the same on every run), so that the board page's persons (the
        call-out's first targets) answer throughout the burst, not at its head."""
        replies = {pid: self._reply(pid, number[pid]) for pid in self.acked}  # encoded before the clock starts
        order = spread(self.acked)
        start = time.monotonic()

        async def one(i: int, pid: str) -> None:
            if ack_rate:
                await asyncio.sleep(max(0.0, start + i / ack_rate - time.monotonic()))
            await self._send(pid, replies[pid])

        await asyncio.gather(*(one(i, pid) for i, pid in enumerate(order)))

    async def follow(self, reply_after: float) -> None:
        """Each person in `acked` replies reply_after·(0.5 … 1.5) s after their SMS was sent, as the outbox shows it.

        The outbox is read by `created_at` (indexed) from the oldest row not yet sent, less `OVERLAP_S` for a row
        committed after a newer one, so that a row created early and sent late is not passed over; read whole when
        nothing new came for `STUCK_S` (a row committed later than that). The phones share the bench's process and
        its two cores with the system they measure: they read little (a whole read at 100,000 was ~0.5 s of CPU), and
        every `every` s: a quarter of the earliest reply's delay, at most 2 s, so a row is found before its reply is
        due. (Read every 0.5 s at 100,000 persons, they took 780,000 rows in 270 reads: 16 s of PostgreSQL's time in a
        run, and the bench's to decode them.)"""
        every = min(2.0, max(0.1, reply_after * 0.5 / 4))
        from sqlmodel import col, select

        from store.db import session_scope
        from store.messages import OutboxMessage

        delay = {pid: reply_after * (0.5 + (i * GOLDEN) % 1) for i, pid in enumerate(self.acked)}
        waiting, tasks = set(self.acked), []
        origin = cursor = datetime(2000, 1, 1, tzinfo=UTC)
        found_at = time.monotonic()

        def poll(since: datetime) -> list[tuple[str, str, datetime | None, datetime]]:
            with session_scope(write=False) as s:
                return list(s.exec(select(OutboxMessage.person_id, OutboxMessage.to, OutboxMessage.sent_at,
                                          OutboxMessage.created_at).where(
                    OutboxMessage.subject == self.cid, OutboxMessage.channel == "sms",
                    col(OutboxMessage.created_at) >= since, col(OutboxMessage.person_id).like("r%"))))

        async def later(pid: str, request: bytes, at: float) -> None:
            await asyncio.sleep(max(0.0, at - time.monotonic()))
            await self._send(pid, request)

        while waiting:
            whole = time.monotonic() - found_at > STUCK_S
            rows = await asyncio.to_thread(poll, origin if whole else cursor - timedelta(seconds=OVERLAP_S))
            if whole:
                found_at = time.monotonic()
            unsent = [created for pid, _, sent, created in rows if pid in waiting and sent is None]
            cursor = min(unsent) if unsent else max([cursor, *(created for *_, created in rows)])
            for pid, to, sent, _ in rows:
                if pid in waiting and sent is not None:
                    waiting.discard(pid)
                    found_at = time.monotonic()
                    at = sent.timestamp() - self.wall_minus_mono + delay[pid]
                    tasks.append(asyncio.create_task(later(pid, self._reply(pid, to), at)))
            await asyncio.sleep(every)
        await asyncio.gather(*tasks)

    @property
    def watched(self) -> list[str]:
        """The persons answering whom the board watched shows: those on its page, or all (a board with every row)."""
        on_page = self.page["persons"]
        return self.acked if on_page is None else sorted(set(on_page) & set(self.acked))

    async def watch(self, replying: asyncio.Future, watch_max_s: float, lost_after_s: float) -> int:
        """Watch the board until every reply it shows is visible and recorded (acknowledged), and every reply is
        recorded in the database, or `lost_after_s` after the last was sent (`watch_max_s` at most); raise what
        `replying` raised. The replies not sent when the watch ended (counted apart)."""
        from sqlmodel import col, func, select

        from store.callouts import CalloutTarget
        from store.db import session_scope

        def all_recorded() -> bool:
            with session_scope(write=False) as s:
                return s.exec(select(func.count()).where(
                    CalloutTarget.callout_id == self.cid, col(CalloutTarget.acknowledged_at).is_not(None),
                    col(CalloutTarget.person_id).like("r%"))).one() >= len(self.acked)

        try:
            give_up = time.monotonic() + watch_max_s
            checked, watched = 0.0, self.watched  # (the page is open: watch_board waited for its first tick)
            while time.monotonic() < give_up:
                await asyncio.sleep(0.05)
                if replying.done():
                    if replying.exception():
                        raise replying.exception()
                    give_up = min(give_up, max(self.sent_at.values()) + lost_after_s)
                if (len(self.recorded) >= len(watched) and all(p in self.recorded for p in watched)
                        and time.monotonic() - checked > 1.0):
                    checked = time.monotonic()
                    if await asyncio.to_thread(all_recorded):
                        break
            self.watching.set()
            unsent = len(self.acked) - len(self.sent_at)
            self.watch_cost = await self.watcher
            for person, (stamp, commit) in (await asyncio.to_thread(shown_stamps, self.cid)).items():
                if person in self.visible:
                    self.stamped[person] = stamp
                    if commit is not None:
                        self.committed[person] = commit
            if unsent:
                replying.cancel()
            try:
                await replying
            except asyncio.CancelledError:
                if not unsent:
                    raise
            return unsent
        finally:
            self.watching.set()
            replying.cancel()
            await self.client.close()
            await asyncio.to_thread(self.api.stop)
