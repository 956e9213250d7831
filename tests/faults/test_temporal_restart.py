"""The Temporal dev server killed and started again in the middle of a call-out.

While it is down the API answers what it can from the database and says 503 (not 500, and not
a 200 for an answer it could not pass on) for what needs Temporal; the worker and the API
reconnect by themselves; answers refused meanwhile are sent again, and nothing is lost or sent twice.
"""
from __future__ import annotations

import asyncio
import time

import pytest

from tests.faults.harness import STEPS, People, build_directory, check_callout, start_callout, wait_until_ended

N = 300


@pytest.mark.budget(180)  # measured 183 s on a 2-core machine at load ~15
async def test_temporal_restarted_in_the_middle_of_a_callout(make_stack):
    stack = make_stack(STEPS)
    towns = build_directory(stack.url, N)
    await stack.start()
    cid = await start_callout(stack, towns)
    # the second half answer only once Temporal is down: the restart falls in the middle of the answers,
    # and answers are refused while it is down, by construction
    people = People(stack, cid, N, spread_s=12, late_share=0.2, held={f"r{i}" for i in range(N // 2, N)})
    stop = asyncio.Event()
    answering = asyncio.create_task(people.run(stop))
    try:
        deadline = time.monotonic() + 300  # anti-hang bound
        while len(people.acked) < N // 4:  # a quarter have answered: the rest are on their way
            assert time.monotonic() < deadline, stack.tail()
            await asyncio.sleep(0.2)
        stack.stop_temporal()
        acked_before = len(people.acked)
        people.release.set()
        down_at = time.monotonic()
        async with stack.http() as http:
            shown = await http.get(f"/api/callouts/{cid}", params={"limit": 1})
            assert shown.status_code == 200 and shown.json()["total"] == N  # from the database
            proxy = await http.post(f"/api/callouts/{cid}/targets/r1/ack", json={"note": "电话确认"})
            assert proxy.status_code == 503 and "try again" in proxy.json()["detail"], proxy.text
            health = await http.get("/healthz")
            assert health.status_code == 503 and "temporal" in health.json()["down"]
        # down for 6 s at least, and until answers have been refused (a condition, however slow the machine)
        give_up = down_at + 300  # an anti-hang bound, not a speed check
        while time.monotonic() - down_at < 6 or not people.errors:
            assert time.monotonic() < give_up, "no answer tried while Temporal was down"
            await asyncio.sleep(0.2)
        acked_while_down, down_s = len(people.acked) - acked_before, time.monotonic() - down_at
        stack.start_temporal()
        ended = await wait_until_ended(stack, cid, timeout=150)
    finally:
        stop.set()
        await answering
    check_callout(cid, N, ended, people=people)  # the answers refused while it was down were taken after the restart
    print(f"\nTemporal down {down_s:.0f} s with {acked_before}/{N} answered, {acked_while_down} taken while it was down, "
          f"{dict(people.errors)} refused (tried again); all {N} recorded after the restart")
