"""kill -9 the worker ten times at random points during a 500-person call-out.

The gateway is Twilio's real SDK against the local fake Twilio, which records every message it
is asked to create: a message created twice would be there twice. Half the kills are aimed at
a moment when messages are being sent (outbox rows in `sending`), the rest fall anywhere.
Afterwards: every target was reached and acknowledged, the fake holds each message once, the
outbox and the audit trail hold each send once, the chain verifies, the summary is right.
"""
from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from urllib.parse import parse_qs, urlsplit

from sqlmodel import select

from store.db import session_scope
from store.messages import OutboxMessage
from tests.faults.harness import STEPS, People, build_directory, check_callout, start_callout, wait_until_ended
from tests.fakes.twilio_server import FakeTwilio

N, KILLS = 500, 10


def sending() -> set[str]:
    """Outbox ids of the messages being sent right now."""
    try:
        with session_scope(write=False) as s:
            return {str(i) for i in s.exec(select(OutboxMessage.id).where(OutboxMessage.status == "sending"))}
    except Exception:  # noqa: BLE001 - a write holds the database for a moment
        return set()


def created_ids(fake: FakeTwilio) -> list[str]:
    return [parse_qs(urlsplit(r.one("StatusCallback") or "").query).get("o", ["?"])[0] for r in fake.created()]


async def test_worker_killed_ten_times_during_a_500_person_callout(make_stack):
    rnd = random.Random(20260701)
    with FakeTwilio() as fake:
        stack = make_stack(STEPS, {
            "YINGJI_GATEWAY": "twilio", "YINGJI_TWILIO_ACCOUNT_SID": fake.account_sid,
            "YINGJI_TWILIO_AUTH_TOKEN": fake.auth_token, "YINGJI_TWILIO_FROM_NUMBER": fake.from_number,
            "YINGJI_TWILIO_API_BASE": fake.base_url, "YINGJI_PUBLIC_BASE_URL": "http://yingji.test",
            "YINGJI_RATE_SMS_PER_S": "1000", "YINGJI_RATE_VOICE_PER_S": "1000"})
        towns = build_directory(stack.url, N)
        await stack.start()
        t0 = time.monotonic()
        cid = await start_callout(stack, towns)
        people = People(stack, cid, N, spread_s=15, late_share=0.2, late_s=32)
        stop = asyncio.Event()
        answering = asyncio.create_task(people.run(stop))
        mid_send = 0
        try:
            for k in range(KILLS):
                if k % 2 == 0:  # aimed: Twilio has some of a batch the worker has not recorded yet (or 4 s passed)
                    # until one has landed, wait for such a moment as long as it takes (the next round of sends
                    # comes within a 30 s wait): on a busy machine a restarted worker can take longer than 4 s
                    # to start, and every aimed kill fell while it was still starting
                    deadline = time.monotonic() + (4 if mid_send else 90)
                    before = sending() & set(created_ids(fake))  # left by an earlier kill, not yet retried
                    while time.monotonic() < deadline and len((sending() & set(created_ids(fake))) - before) < 5:
                        await asyncio.sleep(0.005)
                    mid_send += len((sending() & set(created_ids(fake))) - before) >= 5
                else:
                    await asyncio.sleep(rnd.uniform(0.1, 2.5))
                stack.kill_worker()
                await asyncio.sleep(rnd.uniform(0.0, 0.5))
                stack.start_worker()
                await asyncio.sleep(rnd.uniform(1.0, 2.5))  # starts, picks up, works a little
            ended = await wait_until_ended(stack, cid, timeout=180)
        finally:
            stop.set()
            await answering
        took = time.monotonic() - t0
        creates = Counter(created_ids(fake))
    figures = check_callout(cid, N, ended, creates)
    assert stack.kills == KILLS and mid_send >= 1, f"{mid_send} kills landed between sending and recording"
    by_channel = Counter(m.channel for m in figures["rows"])
    print(f"\n{KILLS} kills ({mid_send} of {KILLS // 2} aimed ones between sending and recording), {N} persons, {dict(by_channel)} messages, "
          f"{sum(creates.values())} created at the gateway, ended after {took:.0f} s")
