"""Finding 9 of issue 16: the live call-out board's server-sent events.

300 streams of one session once polled the database 300 times every 0.5 s (three queries each, also
for an id that did not exist) and slowed every request tenfold. Now an unknown call-out is a 404, a
session holds at most `streams.MAX_PER_SESSION` streams (429 beyond), and one poller per call-out
serves every board watching it. The poller's pause between two polls is a gate the test opens
(no timing): polls are counted, not measured.
"""
from __future__ import annotations

import asyncio

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

    def counted(s, lib, callout_id, since, sent=None):
        polls.append(callout_id)
        return changed_rows(s, lib, callout_id, since, sent)

    monkeypatch.setattr(services, "changed_rows", counted)
    gate = asyncio.Semaphore(0)

    async def pause(self):  # the poller waits for the test, not for the clock
        await gate.acquire()

    monkeypatch.setattr(streams.Broadcaster, "pause", pause)

    cookie = secured.sessions["duty_staff"]["cookie"]
    unknown = await call(secured.app, "GET", "/console/callouts/callout-nope/stream", headers={"cookie": cookie})
    assert unknown.status == 404 and "callout-nope" in unknown.text
    assert polls == []

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
