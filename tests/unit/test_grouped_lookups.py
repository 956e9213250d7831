"""The lookups every answer makes are grouped like the intake's writes (store/group.py): which
workflows wait for this person (`acknowledge`), and whether a signed link was used already (its confirm button).
Under a burst each used to open its own session on its own thread hop: a fifth of the API's CPU in the first
seconds of 1,000 answers/s (bench/api_load.py, docs/performance.md "Load"). The first lookup of each test is held at a
barrier on its thread while the others arrive: they must all go in the next round, one query, each caller still hearing
its own answer."""
from __future__ import annotations

import asyncio
import threading

import httpx
import pytest
from sqlmodel import select

from api.routes import ack as ack_route
from api.services.answers import acks
from config import get_settings
from store.db import session_scope
from store.links import consume, make_ack_token, read_ack_token, used_among
from store.messages import OutboxMessage, UsedLink


def held_first_round(group, loop: asyncio.AbstractEventLoop):
    """Wrap `group.many`: the first round waits for `release` (set from the test) and every round's items are
    noted. Returns (rounds, entered, release, the real `many` to put back)."""
    real, rounds = group.many, []
    entered, release = asyncio.Event(), threading.Event()

    def many(items):
        rounds.append(list(items))
        if len(rounds) == 1:
            loop.call_soon_threadsafe(entered.set)
            assert release.wait(60)
        return real(items)

    group.many = many
    return rounds, entered, release, real


def test_used_among_answers_for_each_link_in_order(db_url):
    key = get_settings().signing_key()
    a, b, c = (read_ack_token(key, make_ack_token(key, "callout-W1", p)) for p in ("p1", "p2", "p3"))
    with session_scope() as s:
        consume(s, b)
    with session_scope(write=False) as s:
        assert used_among(s, [a, b, c, b, a]) == [False, True, False, True, False]
        assert used_among(s, []) == []


async def test_the_workflows_waiting_are_looked_up_together(db_url):
    with session_scope() as s:
        for n, (subject, person, wid) in enumerate([("C1", "p1", "C1/shard-0"), ("C1", "p1", "C1/shard-1"),
                                                     ("C1", "p2", "C1/shard-0"), ("C2", "p1", "C2/shard-0"),
                                                     ("C1", "p3", None)]):
            s.add(OutboxMessage(idempotency_key=f"k{n}", channel="sms", to=f"+861390000000{n}", person_id=person,
                                subject=subject, workflow_id=wid, body="x"))
    rounds, entered, release, real = held_first_round(acks._waiting, asyncio.get_running_loop())
    try:
        # (an answer from someone nobody called: `acknowledge` asks the group, hears nobody waits, and says so)
        first = asyncio.create_task(acks.acknowledge(None, "C9", "p7", "sms"))  # type: ignore[arg-type]
        await asyncio.wait_for(entered.wait(), 60)
        rest = [asyncio.create_task(acks._waiting.submit(pair))
                for pair in [("C1", "p1"), ("C1", "p2"), ("C1", "p3"), ("C2", "p1"), ("C1", "p1")]]
        await asyncio.sleep(0)
        assert len(acks._waiting) == 5  # all waiting for the held round
        release.set()
        with pytest.raises(acks.AnswerError, match="nobody"):
            await first
        assert [await t for t in rest] == [{"C1/shard-0", "C1/shard-1"}, {"C1/shard-0"}, set(), {"C2/shard-0"},
                                           {"C1/shard-0", "C1/shard-1"}]
    finally:
        release.set()
        acks._waiting.many = real
    assert rounds[0] == [("C9", "p7")] and len(rounds[1]) == 5  # the five in one query


async def test_link_confirmations_are_checked_together_and_a_used_link_is_refused(db_url):
    from api.app import create_app

    key = get_settings().signing_key()
    tokens = [make_ack_token(key, "callout-W1", f"p{i}") for i in range(4)]
    with session_scope() as s:
        for t in tokens:
            consume(s, read_ack_token(key, t))  # every one spent: refused before anything is stored
    app = create_app(temporal_client=object())
    rounds, entered, release, real = held_first_round(ack_route._used_check, asyncio.get_running_loop())
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as web:
            first = asyncio.create_task(web.post(f"/ack/{tokens[0]}"))
            await asyncio.wait_for(entered.wait(), 60)
            rest = [asyncio.create_task(web.post(f"/ack/{t}")) for t in tokens[1:]]
            while len(ack_route._used_check) < 3:  # the three others wait for the held round
                await asyncio.sleep(0.01)
            release.set()
            answers = [await first, *[await t for t in rest]]
    finally:
        release.set()
        ack_route._used_check.many = real
    assert [r.status_code for r in answers] == [409] * 4
    assert all("已使用" in r.text for r in answers)
    assert [len(r) for r in rounds] == [1, 3]
    with session_scope(write=False) as s:
        assert len(s.exec(select(UsedLink)).all()) == 4  # nothing more spent
