"""kill -9 the worker ten times during a 500-person call-out.

The gateway is Twilio's real SDK against the local fake Twilio, which records every message it
is asked to create: a message created twice would be there twice.

Five kills are aimed, with a barrier: the fake Twilio creates the k-th message of the next ones
and holds its answer (and those of any creates after it) until the test has killed the worker.
So each aimed kill lands where it aims, every time: messages exist at the gateway that the worker
never recorded. Three fall in the first round (500 SMS), two in the second (a call to everyone who
has not answered after 30 s: at least the 113 who answer late). The other five kills fall anywhere,
each on a worker that has started.

Afterwards: every target was reached and acknowledged, the fake holds each message once, each
message created before an aimed kill is the one on record (found again, not sent again), the
outbox and the audit trail hold each send once, the chain verifies, the summary is right.
"""
from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlmodel import col, select

from store.db import session_scope
from store.messages import OutboxMessage
from tests.faults.harness import STEPS, People, build_directory, check_callout, start_callout, wait_until_ended
from tests.fakes.twilio_server import FakeTwilio

N, AIMED, RANDOM = 500, 5, 5  # kills


def outbox_rows(ids: list[str]) -> dict[str, OutboxMessage]:
    with session_scope(write=False) as s:
        return {str(m.id): m for m in s.exec(select(OutboxMessage).where(col(OutboxMessage.id).in_([int(i) for i in ids])))}


def created_ids(fake: FakeTwilio) -> list[str]:
    return [parse_qs(urlsplit(r.one("StatusCallback") or "").query).get("o", ["?"])[0] for r in fake.created()]


# measured 353 s and 405 s on a 2-core machine at load ~10 (every kill waits out a 10 s heartbeat
# timeout; a worker's imports take ~20 s there)
@pytest.mark.budget(300)
async def test_worker_killed_ten_times_during_a_500_person_callout(make_stack):
    rnd = random.Random(20260701)
    with FakeTwilio() as fake:
        stack = make_stack(STEPS, {
            "YINGJI_GATEWAY": "twilio", "YINGJI_TWILIO_ACCOUNT_SID": fake.account_sid,
            "YINGJI_TWILIO_AUTH_TOKEN": fake.auth_token, "YINGJI_TWILIO_FROM_NUMBER": fake.from_number,
            "YINGJI_TWILIO_API_BASE": fake.base_url, "YINGJI_PUBLIC_BASE_URL": "http://yingji.test",
            "YINGJI_RATE_SMS_PER_S": "1000", "YINGJI_RATE_VOICE_PER_S": "1000"}, standby=True)
        towns = build_directory(stack.url, N)
        await stack.start()
        t0 = time.monotonic()
        cid = await start_callout(stack, towns)
        people = People(stack, cid, N, spread_s=15, late_share=0.2)
        stop = asyncio.Event()
        answering = asyncio.create_task(people.run(stop))
        held: dict[str, str] = {}  # outbox id -> sid of every message created while the worker was killed
        try:
            # Each aimed kill holds from the 1st-25th create on (the worker's few SDK threads may add a
            # handful each), so three use up at most ~90 of the first round's 500 and two at most ~60 of the
            # second round's 113 or more: a create always comes. A kill delays a round (the activity is retried
            # after its heartbeat timeout), it does not end it.
            for kind in ["sms"] * 3 + ["voice"] * 2:
                hold = fake.hold_creates(after=rnd.randint(1, 25), kind=kind)
                await hold.wait(timeout=180)  # anti-hang bound: the second round starts ~30 s after the first
                try:
                    unrecorded = outbox_rows(hold.outbox_ids)
                    stack.kill_worker()
                finally:
                    hold.release()
                # the barrier's own check, not luck: the worker was waiting for Twilio's answer
                assert {m.status for m in unrecorded.values()} == {"sending"}, \
                    [(i, m.status) for i, m in unrecorded.items()]
                held.update(zip(hold.outbox_ids, (sid for _, sid in hold.held), strict=True))
                stack.start_worker()
            for _ in range(RANDOM):
                await stack.worker_started()
                await asyncio.sleep(rnd.uniform(0.1, 2.5))
                stack.kill_worker()
                await asyncio.sleep(rnd.uniform(0.0, 0.5))
                stack.start_worker()
                await asyncio.sleep(rnd.uniform(1.0, 2.5))  # starts, picks up, works a little
            ended = await wait_until_ended(stack, cid, timeout=300)  # anti-hang bound, a few times the expected
        finally:
            stop.set()
            await answering
        took = time.monotonic() - t0
        creates = Counter(created_ids(fake))
    figures = check_callout(cid, N, ended, creates, people=people)  # every message created once, all acknowledged
    assert stack.kills == AIMED + RANDOM
    recorded = outbox_rows(list(held))
    assert {o: recorded[o].provider_id for o in held} == held, \
        "a message Twilio created before a kill is not the one on record"
    by_channel = Counter(m.channel for m in figures["rows"])
    print(f"\n{stack.kills} kills ({AIMED} aimed, holding {len(held)} messages created and not yet recorded), "
          f"{N} persons, {dict(by_channel)} messages, {sum(creates.values())} created at the gateway, "
          f"ended after {took:.0f} s")
