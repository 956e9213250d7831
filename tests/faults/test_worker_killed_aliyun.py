"""kill -9 the worker seven times during a 500-person call-out whose SMS and calls go through Aliyun.

test_worker_killed.py with Aliyun instead of Twilio: the official SDKs against the local fake Aliyun, which checks
every request's signature and records every message and call it is asked to create (one created twice would be
there twice). Aliyun plays its side as it would: an SmsReport (delivered) for every SMS, a VoiceCallReport (the call
is up) and then an IvrReport with key 1 for every call, pushed into the API with the token.

Five kills are aimed with a barrier: the fake creates the k-th message (three in the SMS round) or call (two in the
call round) and holds its answer until the test has killed the worker; the other two fall anywhere, on a worker
that has started. An SMS the killed worker never heard of is found again by the retry (Aliyun's push named it on
its row, or QuerySendDetails by OutId); a call, by the push that named it (Aliyun has no query by OutId).

No kill falls between a row's mark (at the gateway) and its request's arrival at Aliyun: a call lost there is, by
design, reported failed and never placed again (nobody can tell whether it rang; tests/unit/test_aliyun_gateways.py),
and its person moves on to the next step. On a busy machine an aimed kill landed there for the twenty calls marked
with the held one, twice, and twenty persons ended unreachable. So each kill waits, the worker stopped, until every
row marked at Aliyun has arrived there (`Stack.kill_worker_when`).

Afterwards: every target acknowledged, Aliyun holds each message and call once, each created before an aimed kill
is the one on record, the receipts and keypresses are recorded, the outbox and the audit trail hold each send once.
"""
from __future__ import annotations

import asyncio
import random
import time
from collections import Counter

import httpx
import pytest
from sqlmodel import col, func, select

from store.audit import AuditEvent
from store.db import session_scope
from store.messages import OutboxMessage
from tests.faults.harness import STEPS, People, build_directory, check_callout, start_callout, wait_until_ended
from tests.fakes.aliyun_server import FakeAliyun, aliyun_env, write_templates

N, AIMED, RANDOM = 500, 5, 2  # kills (the Twilio test has five random ones; here the aimed ones are the point)


def arrived(fake: FakeAliyun) -> bool:
    """Every row marked as at Aliyun and not yet answered has reached it (read the rows first: a request arriving
    meanwhile only adds to what Aliyun has)."""
    with session_scope(write=False) as s:
        marked = set(s.exec(select(OutboxMessage.id).where(col(OutboxMessage.status) == "sending",
                                                           col(OutboxMessage.gateway_at).is_not(None),
                                                           col(OutboxMessage.sent_at).is_(None))))
    with fake.lock:
        seen = {r.params.get("OutId") for r in fake.requests if r.kind}
    return {str(i) for i in marked} <= seen


def outbox_rows(ids: list[str]) -> dict[str, OutboxMessage]:
    with session_scope(write=False) as s:
        return {str(m.id): m for m in s.exec(select(OutboxMessage).where(col(OutboxMessage.id).in_([int(i) for i in ids])))}


async def play_aliyun(fake: FakeAliyun, http: httpx.AsyncClient, stop: asyncio.Event, errors: Counter) -> None:
    """Aliyun's side: each SMS delivered, each call up and then answered with key 1, pushed once each
    (pushed again next round if the API did not take it: Temporal or the database away for a moment)."""
    reported: set[str] = set()
    up: set[str] = set()
    pressed: set[str] = set()

    async def push(done: set[str], ident: str, coro) -> None:
        try:
            r = await coro
            if r.status_code == 200:
                done.add(ident)
            else:
                errors[f"HTTP {r.status_code}"] += 1
        except Exception as exc:  # noqa: BLE001 - the API's database or Temporal away: next round
            errors[type(exc).__name__] += 1

    while not stop.is_set():
        with fake.lock:
            sms, calls = list(fake.messages), list(fake.calls)
        for biz in sms:
            if biz not in reported:
                await push(reported, biz, fake.sms_report(http, biz))
        for call in calls:
            if call not in up:
                await push(up, call, fake.call_progress(http, call, "200103"))
            elif call not in pressed:
                await push(pressed, call, fake.ivr_report(http, call, "1"))
        await asyncio.sleep(0.3)


# measured like test_worker_killed.py (each kill waits out a heartbeat timeout and the 25 s lease of a row left at
# the gateway)
@pytest.mark.budget(300)
async def test_worker_killed_seven_times_during_a_500_person_callout_through_aliyun(make_stack):
    rnd = random.Random(20261205)
    with FakeAliyun(webhook_base="http://faults") as fake:
        env = aliyun_env(fake, public_base_url="http://yingji.test", sms_per_s=1000, voice_per_s=1000)
        stack = make_stack(STEPS, env, standby=True)
        write_templates(stack.workdir / "definitions" / "gateways" / "aliyun.yaml")  # the office's approved codes
        towns = build_directory(stack.url, N)
        await stack.start()
        t0 = time.monotonic()
        cid = await start_callout(stack, towns)
        people = People(stack, cid, N, spread_s=15, late_share=0.2)
        stop = asyncio.Event()
        push_errors: Counter = Counter()
        async with stack.http() as http:
            answering = asyncio.create_task(people.run(stop))
            aliyun = asyncio.create_task(play_aliyun(fake, http, stop, push_errors))
            held: dict[str, str] = {}  # outbox id -> BizId/CallId of every message created while the worker was killed
            try:
                for kind in ["sms"] * 3 + ["voice"] * 2:
                    hold = fake.hold_creates(after=rnd.randint(1, 25), kind=kind)
                    await hold.wait(timeout=180)  # anti-hang bound: the call round starts ~30 s after the SMS round
                    try:
                        await stack.kill_worker_when(lambda: arrived(fake))
                        unrecorded = outbox_rows(hold.outbox_ids)
                    finally:
                        hold.release()
                    # the barrier's own check, not luck: the worker was waiting for Aliyun's answer
                    assert {m.status for m in unrecorded.values()} <= {"sending", "delivered", "answered"}, \
                        [(i, m.status) for i, m in unrecorded.items()]
                    assert all(m.gateway_at is not None and m.sent_at is None for m in unrecorded.values())
                    held.update(zip(hold.outbox_ids, (ident for _, ident in hold.held), strict=True))
                    stack.start_worker()
                for _ in range(RANDOM):
                    await stack.worker_started()
                    await asyncio.sleep(rnd.uniform(0.1, 2.5))
                    await stack.kill_worker_when(lambda: arrived(fake))
                    await asyncio.sleep(rnd.uniform(0.0, 0.5))
                    stack.start_worker()
                    await asyncio.sleep(rnd.uniform(1.0, 2.5))
                ended = await wait_until_ended(stack, cid, timeout=300)  # anti-hang bound
                # the last pushes (keys of the last calls) go in before the counts
                await asyncio.sleep(1.0)
            finally:
                stop.set()
                await answering
                await aliyun
        took = time.monotonic() - t0
        creates = Counter(r.params["OutId"] for r in fake.created())
        refused = list(fake.refused)
    figures = check_callout(cid, N, ended, creates, people=people)  # every message created once, all acknowledged
    assert not refused, f"Aliyun refused requests at the door (signature, nonce, clock): {refused[:5]}"
    assert stack.kills == AIMED + RANDOM
    recorded = outbox_rows(list(held))
    for o, ident in held.items():  # found again, not sent again: the BizId/CallId a push named, or the OutId's
        assert recorded[o].provider_id in (ident, f"aliyun-out:{o}"), (o, ident, recorded[o].provider_id)
    rows = figures["rows"]
    sms = [m for m in rows if m.channel == "sms" and m.provider_id and (m.meta or {}).get("purpose") != "summary"]
    assert sms and all(m.status == "delivered" for m in sms if m.person_id.startswith("r")), \
        Counter(m.status for m in sms)
    calls = [m for m in rows if m.channel == "voice"]
    with session_scope(write=False) as s:
        voice_acks = s.exec(select(func.count()).where(AuditEvent.subject == cid, AuditEvent.kind == "callout.ack",
                                                       AuditEvent.channel == "voice")).one()
    assert calls and voice_acks > 0, "no keypress recorded"
    print(f"\n{stack.kills} kills ({AIMED} aimed, holding {len(held)} messages created and not yet recorded), "
          f"{N} persons, {dict(Counter(m.channel for m in rows))} messages, {sum(creates.values())} created at Aliyun, "
          f"{voice_acks} answered by key 1, push retries {dict(push_errors)}, ended after {took:.0f} s")
