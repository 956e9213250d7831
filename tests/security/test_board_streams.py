"""Finding 9 of issue 16: the live call-out board's server-sent events.

300 streams of one session once polled the database 300 times every 0.5 s (three queries each, also
for an id that did not exist) and slowed every request tenfold. Now an unknown call-out is a 404, a
session holds at most `streams.MAX_PER_SESSION` streams (429 beyond), and one poller per call-out
serves every board watching it. The poller's pause between two polls is a gate the test opens
(no timing): polls are counted, not measured.
"""
from __future__ import annotations

import asyncio

from sqlmodel import select

from tests.security.asgi import ANTI_HANG_S, Stream, call, until


def new_session(settings, role_token_id: int) -> str:
    from api.console import auth

    return f"{auth.COOKIE}={auth.session_cookie(settings, {'m': 'token', 't': role_token_id})}"


async def test_one_poll_per_callout_a_limit_per_session_and_404_for_unknown_ids(secured, monkeypatch):
    from api.console import streams
    from api.services import board as services
    from store.auth import lookup_token
    from store.callouts import Callout
    from store.db import session_scope

    with session_scope() as s:
        s.add(Callout(id="callout-SSE1", plan_id="heavy_rain", plan_version="t", level="orange", category="暴雨"))
        staff = lookup_token(s, secured.tokens["duty_staff"]).id
    polls: list[str] = []
    changed_rows = services.changed_rows

    def counted(s, lib, callout_id, since, *rest):
        polls.append(callout_id)
        return changed_rows(s, lib, callout_id, since, *rest)

    monkeypatch.setattr(services, "changed_rows", counted)
    gate = asyncio.Semaphore(0)

    async def pause(self):  # the poller waits for the test, not for the clock
        await gate.acquire()

    monkeypatch.setattr(streams.Broadcaster, "pause", pause)

    cookie = secured.sessions["duty_staff"]["cookie"]
    unknown = await call(secured.app, "GET", "/console/callouts/callout-nope/stream", headers={"cookie": cookie})
    assert unknown.status == 404 and "callout-nope" in unknown.text
    assert polls == []
    for rows in ("1,x", ",".join(["1"] * 501), "1;2"):  # a full page names up to 500 target ids
        bad = await call(secured.app, "GET", f"/console/callouts/callout-SSE1/stream?rows={rows}",
                         headers={"cookie": cookie})
        assert bad.status == 400 and "500" in bad.text, (rows, bad.status, bad.text)
    assert polls == []  # refused before any stream started

    sessions = [new_session(secured.settings, staff) for _ in range(3)]
    boards = [Stream(secured.app, "/console/callouts/callout-SSE1/stream", c) for c in sessions for _ in range(4)]
    try:
        for b in boards:
            assert await asyncio.wait_for(b.status, ANTI_HANG_S) == 200
        await until("every board has its first tick", lambda: all(any(e == "status" for e, _ in b.events)
                                                                   for b in boards))
        assert polls == ["callout-SSE1"], f"{len(polls)} polls for {len(boards)} boards: one poll serves them all"
        # a fifth stream of one session is refused; the other sessions' streams go on
        fifth = await call(secured.app, "GET", "/console/callouts/callout-SSE1/stream", headers={"cookie": sessions[0]})
        assert fifth.status == 429 and str(streams.MAX_PER_SESSION) in fifth.text
        for n in range(2, 5):  # each tick the test lets through is one poll, whatever the number of boards
            gate.release()
            await until(f"poll {n}", lambda n=n: len(polls) >= n)
            await asyncio.sleep(0)
            assert len(polls) == n
        with session_scope() as s:
            s.get(Callout, "callout-SSE1").status = "completed"
        gate.release()
        await until("every board hears the status", lambda: all(("status", {"status": "completed"}) in b.events
                                                                 for b in boards))
        assert len(polls) == 5
    finally:
        for b in boards:
            await b.close()
    app_boards = secured.app.state.boards
    await until("the poller stops with its last board", lambda: not app_boards.feeds)
    await until("every session's slots are free", lambda: not app_boards.sessions)
    again = Stream(secured.app, "/console/callouts/callout-SSE1/stream", sessions[0])
    try:
        assert await asyncio.wait_for(again.status, ANTI_HANG_S) == 200
    finally:
        await again.close()


async def test_a_full_page_is_made_and_sent_only_its_own_rows(secured, monkeypatch):
    """A page of the board holds 500 rows. When the call-out has more, the page names them in its stream's URL, and
    the stream makes and sends only those: the browser drops every other row, and a 100,000-person call-out sent
    every change of every target to every board (docs/performance.md, "A board sent what it shows")."""
    import re
    from datetime import UTC, datetime, timedelta

    from sqlalchemy import insert, update

    from api.console import streams
    from api.services.board import BOARD_LIMIT
    from store.callouts import Callout, CalloutTarget
    from store.db import session_scope
    from tests.helpers import console_page

    now = datetime.now(UTC)
    with session_scope() as s:
        s.add(Callout(id="callout-PAGE", plan_id="heavy_rain", plan_version="t", level="orange", category="暴雨"))
        s.flush()
        s.execute(insert(CalloutTarget.__table__), [
            {"callout_id": "callout-PAGE", "target_key": f"villages/p{i}", "shard": 0, "tier": "villages",
             "position_code": "resp", "org_unit_id": "v", "person_id": f"p{i}", "name": f"村{i}", "state": "notified",
             "attempts": [], "escalated_to": [], "spec": {}, "ack_late": False, "updated_at": now}
            for i in range(BOARD_LIMIT + 1)])
    page = await console_page(secured.app, secured.tokens["duty_staff"], "/console/callouts/callout-PAGE")
    url = re.search(r'data-stream="([^"]+)"', page.text).group(1)
    shown = {int(i) for i in re.search(r"[?&]rows=([0-9,]+)", url).group(1).split(",")}
    with session_scope(write=False) as s:
        every = set(s.exec(select(CalloutTarget.id).where(CalloutTarget.callout_id == "callout-PAGE")))
    assert len(shown) == BOARD_LIMIT and len(every - shown) == 1
    [off_page] = every - shown

    gate = asyncio.Semaphore(0)

    async def pause(self):
        await gate.acquire()

    monkeypatch.setattr(streams.Broadcaster, "pause", pause)
    board = Stream(secured.app, url, secured.sessions["duty_staff"]["cookie"])

    def sent() -> list[int]:
        return [r["id"] for kind, rows in board.events if kind == "rows" for r in rows]

    try:
        assert await asyncio.wait_for(board.status, ANTI_HANG_S) == 200
        await until("the first tick", lambda: any(kind == "status" for kind, _ in board.events))
        with session_scope() as s:
            s.execute(update(CalloutTarget).where(CalloutTarget.id.in_([off_page, min(shown)]))
                      .values(state="escalated", updated_at=now + timedelta(seconds=1)))
        gate.release()
        await until("the page's row escalated", lambda: any(
            r["id"] == min(shown) and r["state"] == "escalated" for kind, rows in board.events if kind == "rows"
            for r in rows))
        assert off_page not in sent() and set(sent()) <= shown
    finally:
        await board.close()
