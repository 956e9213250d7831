"""kill -9 the worker while it sends DingTalk work notifications 工作通知 during a call-out by IM.

The fake DingTalk takes the k-th notification (a person has it) and holds its answer until the test has killed the
worker, three times; the worker never heard of those. DingTalk has no look-up by our key, so the fresh worker sends
the same notification again: the same content, which DingTalk delivers to the same person once a day (its
documented rule, which the fake plays: 同一个微应用相同消息内容同一个用户一天只能接收一次), so nobody gets two.

Afterwards: every person acknowledged (each after the notification reached them), each person received
one notification at DingTalk (the copies sent again reached nobody), the outbox and the audit trail hold each send
once, the chain verifies.
"""
from __future__ import annotations

import asyncio
import random
from collections import Counter

import pytest
from sqlalchemy import update

from store.db import get_engine
from store.directory import Person
from tests.faults.harness import People, build_directory, check_callout, start_callout, wait_until_ended
from tests.fakes.dingtalk_server import FakeDingTalk

N, AIMED = 100, 3
STEPS = ["- notify: [im]", "- wait_ack: 30s", "- notify: [im]", "- wait_ack: 30s"]


@pytest.mark.budget(150)  # a 100-person call-out, three kills with restarts (estimated)
async def test_worker_killed_at_dingtalk_sends_nobody_gets_two(make_stack):
    rnd = random.Random(20261205)
    with FakeDingTalk() as fake:
        stack = make_stack(STEPS, {"YINGJI_GATEWAY_IM": "dingtalk", "YINGJI_DINGTALK_APP_KEY": fake.app_key,
                                   "YINGJI_DINGTALK_APP_SECRET": fake.app_secret,
                                   "YINGJI_DINGTALK_AGENT_ID": str(fake.agent_id),
                                   "YINGJI_DINGTALK_API_BASE": fake.base_url,
                                   "YINGJI_PUBLIC_BASE_URL": "http://yingji.test"}, standby=True)
        towns = build_directory(stack.url, N)
        with get_engine(stack.url, write=True).begin() as conn:  # each person's DingTalk userid (a directory field)
            for i in range(N):
                conn.execute(update(Person).where(Person.id == f"r{i}").values(dingtalk_user_id=f"ding-r{i}"))
        await stack.start()
        cid = await start_callout(stack, towns)
        people = People(stack, cid, N, spread_s=10, late_share=0.0)
        stop = asyncio.Event()
        answering = asyncio.create_task(people.run(stop))
        held: list[str] = []
        try:
            for _ in range(AIMED):
                hold = fake.hold_sends(after=rnd.randint(1, 20))
                await hold.wait(timeout=180)  # anti-hang bound
                try:
                    stack.kill_worker()
                finally:
                    hold.release()
                held += [n.userid for n in hold.held]
                stack.start_worker()
            ended = await wait_until_ended(stack, cid, timeout=300)  # anti-hang bound
        finally:
            stop.set()
            await answering
        sent = Counter(n.userid for n in fake.notifications.values())
        delivered = Counter(n.userid for n in fake.delivered())
    assert stack.kills == AIMED and held
    check_callout(cid, N, ended, people=people)  # everyone acknowledged after a message reached them, each send recorded once
    assert delivered == {f"ding-r{i}": 1 for i in range(N)}, "each person got one notification"
    again = {u for u, c in sent.items() if c > 1}  # DingTalk cannot be asked what it took: what no worker heard of
    assert set(held) <= again, f"held at a kill: {sorted(set(held))}; sent again: {sorted(again)}"  # is sent again
    assert not fake.refused, fake.refused[:5]
