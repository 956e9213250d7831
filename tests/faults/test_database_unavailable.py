"""The database locked by someone else for 8 s in the middle of a call-out (SQLite's way of being
unavailable: a backup, a long migration, an operator's shell), with the busy timeout at 0.5 s.

Activities that write fail and Temporal retries them; the API answers 503 for writes it cannot
make (not 500) and reads go on; when the lock is gone everything catches up and nothing is lost.
"""
from __future__ import annotations

import asyncio
import sqlite3
import time

import pytest

from tests.faults.harness import STEPS, People, build_directory, check_callout, start_callout, wait_until_ended

N = 300
LOCKED_S = 8.0


def met_the_lock(stack) -> int:
    """Activity attempts that failed on the lock (and were retried), from the worker's log."""
    worker_log = "\n".join(p.read_text(errors="replace") for p in stack.workdir.glob("worker-*.log"))
    return worker_log.count("database is locked")


@pytest.mark.budget(180)  # measured 184 s on a 2-core machine at load ~15
async def test_database_locked_for_a_while(make_stack):
    stack = make_stack(STEPS, {"YINGJI_DB_BUSY_TIMEOUT_MS": "500"})
    towns = build_directory(stack.url, N)
    await stack.start()
    cid = await start_callout(stack, towns)
    # the second half answer only once the database is locked: their answers' records meet the lock
    people = People(stack, cid, N, spread_s=12, late_share=0.2, held={f"r{i}" for i in range(N // 2, N)})
    stop = asyncio.Event()
    answering = asyncio.create_task(people.run(stop))
    try:
        deadline = time.monotonic() + 300  # anti-hang bound
        while len(people.acked) < N // 5:
            assert time.monotonic() < deadline, stack.tail()
            await asyncio.sleep(0.2)
        lock = sqlite3.connect(stack.url.split("///", 1)[1], isolation_level=None, timeout=30)
        lock.execute("BEGIN EXCLUSIVE")
        locked_at, acked_before = time.monotonic(), len(people.acked)
        people.release.set()
        try:
            async with stack.http() as http:
                shown = await http.get(f"/api/callouts/{cid}", params={"limit": 1})
                assert shown.status_code == 200  # reads go on (WAL)
                msg = (await http.get("/api/outbox", params={"subject": cid, "person_id": "r7"})).json()[0]
                reply = await http.post(f"/api/simulator/messages/{msg['id']}", json={"outcome": "reply", "body": "1"})
                assert reply.status_code == 503 and "try again" in reply.json()["detail"], reply.text
            # locked for LOCKED_S at least, and until an activity has met the lock (a condition, not luck)
            give_up = locked_at + 300  # an anti-hang bound, not a speed check
            while time.monotonic() - locked_at < LOCKED_S or not met_the_lock(stack):
                assert time.monotonic() < give_up, "no activity met the lock"
                await asyncio.sleep(0.2)
        finally:
            locked_s = time.monotonic() - locked_at
            lock.execute("ROLLBACK")
            lock.close()
        ended = await wait_until_ended(stack, cid, timeout=150)
    finally:
        stop.set()
        await answering
    check_callout(cid, N, ended, people=people)
    retried = met_the_lock(stack)
    print(f"\ndatabase locked {locked_s:.0f} s with {acked_before}/{N} answered; {retried} activity attempts failed "
          f"on the lock and were retried; all {N} recorded")
