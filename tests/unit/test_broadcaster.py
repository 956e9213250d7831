"""The live boards' broadcaster (api/console/streams.py) with the poll and the rows read played by the test: a watcher
that joins once the shared poll has left out rows it had sent reads the window itself, and rows a writer tells of
between two polls reach every watcher at once, as a partial tick. The pause between two polls is a gate the test
never opens: nothing here depends on the clock."""
from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from api.console.streams import Broadcaster, Tick

T0 = datetime(2026, 12, 8, 2, 0, tzinfo=UTC)
ANTI_HANG_S = 30


class Board:
    """A poll that sends each row once to the shared poll (noting it in `sent`), whole to a catch-up."""

    def __init__(self) -> None:
        self.rows = {1: {"id": 1, "state": "notified"}, 2: {"id": 2, "state": "notified"}}
        self.polls: list[str] = []
        self.reads: list[tuple[list[int], bool]] = []
        self.wanted: list[frozenset | None] = []

    async def poll(self, key: str, since: datetime, sent: dict | None, wanted: frozenset | None = None) -> Tick:
        self.polls.append("shared" if sent is not None else "catch-up")
        self.wanted.append(wanted)
        fresh = [r for i, r in self.rows.items() if (sent is None or sent.get(i) != r) and (wanted is None or i in wanted)]
        if sent is not None:
            sent.update({r["id"]: dict(r) for r in fresh})
        return Tick(fresh, T0, {"villages": len(self.rows)}, "running")

    async def told(self, key: str, ids: list[int], sent: dict) -> list[dict]:
        self.reads.append((ids, sent is not None))
        return [self.rows[i] for i in ids]


async def _next(ticks) -> Tick:
    return await asyncio.wait_for(anext(ticks), ANTI_HANG_S)


async def test_a_late_watcher_catches_up_and_told_rows_reach_everyone_between_polls(monkeypatch) -> None:
    board = Board()
    hub = Broadcaster(board.poll, 0.5, board.told)

    async def shut(self) -> None:  # the next poll never comes
        await asyncio.Event().wait()

    monkeypatch.setattr(Broadcaster, "pause", shut)
    first = hub.watch("CO-1", T0 - timedelta(seconds=5))
    try:
        tick = await _next(first)
        assert [r["id"] for r in tick.rows] == [1, 2] and board.polls == ["shared"]

        # the shared poll's last tick left out nothing yet, but its memo holds rows: a newcomer reads for itself
        late = hub.watch("CO-1", T0)
        try:
            caught = await _next(late)
            assert [r["id"] for r in caught.rows] == [1, 2] and board.polls == ["shared", "catch-up"]

            board.rows[2] = {"id": 2, "state": "acknowledged"}
            hub.nudge([("CO-1", 2), ("CO-unwatched", 7)])
            for ticks in (first, late):
                told = await _next(ticks)
                assert told.partial and told.rows == [{"id": 2, "state": "acknowledged"}] and told.counts is None
            assert board.reads == [([2], True)] and board.polls == ["shared", "catch-up"]
        finally:
            await late.aclose()
    finally:
        await first.aclose()
    await asyncio.sleep(0)
    assert hub.feeds == {}


def test_a_poll_that_made_many_rows_waits_longer_before_the_next() -> None:
    from api.console.streams import BUSY_ROWS, MAX_SLOWDOWN, slowdown

    assert slowdown(0) == slowdown(BUSY_ROWS) == 1
    assert slowdown(2 * BUSY_ROWS) == 2 and slowdown(100 * BUSY_ROWS) == MAX_SLOWDOWN


async def test_told_rows_go_out_while_a_poll_is_still_making_its_own() -> None:
    """A poll of a 100,000-person call-out makes thousands of rows; the rows told of meanwhile do not wait for it."""
    board = Board()
    polling, held = asyncio.Event(), asyncio.Event()
    first_poll = board.poll

    async def slow_second_poll(key: str, since: datetime, sent: dict | None, wanted: frozenset | None) -> Tick:
        if board.polls:  # the second poll is held until the test lets it go
            polling.set()
            await held.wait()
        return await first_poll(key, since, sent, wanted)

    hub = Broadcaster(slow_second_poll, 0.0, board.told)
    ticks = hub.watch("CO-1", T0 - timedelta(seconds=5))
    try:
        await _next(ticks)
        await asyncio.wait_for(polling.wait(), ANTI_HANG_S)
        board.rows[1] = {"id": 1, "state": "acknowledged"}
        hub.nudge([("CO-1", 1)])
        told = await _next(ticks)
        assert told.partial and told.rows == [{"id": 1, "state": "acknowledged"}] and not held.is_set()
        held.set()
        assert not (await _next(ticks)).partial
    finally:
        await ticks.aclose()


def test_a_stream_sends_no_row_older_than_one_it_sent_nor_a_repeat() -> None:
    from api.services.board import fresh_rows

    sent: dict = {}
    answered = {"id": 7, "state": "notified", "answered_at": "t", "v": [10.0, 12.0]}
    acked = {"id": 7, "state": "acknowledged", "answered_at": "t", "v": [13.0, 12.0]}
    unanswered = {"id": 7, "state": "notified", "answered_at": None, "v": [10.0, 0]}
    assert len(fresh_rows([answered], sent)) == 1
    assert fresh_rows([unanswered], sent) == [], "read before the answer: older"
    assert len(fresh_rows([acked], sent)) == 1
    assert fresh_rows([answered, acked], sent) == [], "an older one, then a repeat"
    assert len(fresh_rows([{"id": 8, "state": "notified"}], sent)) == 1, "a row without its stamps goes"


async def test_a_full_page_is_made_only_its_rows_and_told_only_of_them(monkeypatch) -> None:
    """A board whose page is full names its rows: the poll makes only those (the union of what its watchers show,
    every row once one watcher takes all), and a told row no watcher shows is not read."""
    board = Board()
    board.rows[3] = {"id": 3, "state": "notified"}
    hub = Broadcaster(board.poll, 0.5, board.told)

    async def shut(self) -> None:
        await asyncio.Event().wait()

    monkeypatch.setattr(Broadcaster, "pause", shut)
    page = hub.watch("CO-1", T0 - timedelta(seconds=5), frozenset({1, 2}))
    try:
        assert [r["id"] for r in (await _next(page)).rows] == [1, 2] and board.wanted == [frozenset({1, 2})]
        hub.nudge([("CO-1", 3), ("CO-1", 2)])
        told = await _next(page)
        assert board.reads == [([2], True)] and [r["id"] for r in told.rows] == [2]
        everything = hub.watch("CO-1", T0)
        try:
            caught = await _next(everything)  # its own catch-up, whole
            assert [r["id"] for r in caught.rows] == [1, 2, 3] and board.wanted[-1] is None
            assert hub.feeds["CO-1"].wanted() is None
        finally:
            await everything.aclose()
        assert hub.feeds["CO-1"].wanted() == frozenset({1, 2})
        other = hub.watch("CO-1", T0, frozenset({3}))  # another page: rows the polls have not been making
        try:
            assert [r["id"] for r in (await _next(other)).rows] == [3]
            assert board.polls[-1] == "catch-up" and board.wanted[-1] == frozenset({3})
            assert hub.feeds["CO-1"].wanted() == frozenset({1, 2, 3})
        finally:
            await other.aclose()
    finally:
        await page.aclose()
