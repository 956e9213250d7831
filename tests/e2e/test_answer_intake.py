"""Answers are stored first (api/services/answers/intake.py): an SMS reply that cannot be processed now —
Temporal unreachable, the API process that took it gone — is on record from the moment its webhook is answered,
and is taken up again and acknowledged, once; a reply the database cannot store is refused with 503 and
Retry-After (the gateway sends it again), never answered 200 and dropped. Twilio's real SDK and the fake Twilio
(tests/e2e/test_twilio_flow.py's set-up), the time-skipping server, a real SQLite database."""
from __future__ import annotations

import asyncio
import sqlite3

import httpx
from sqlmodel import func, select

from api.app import create_app
from config import get_settings
from store.audit import AuditEvent
from store.db import dispose_all, session_scope
from store.intake import AnswerIntake
from store.messages import InboundMessage
from tests.e2e import test_twilio_flow as twilio
from tests.e2e.test_twilio_flow import PUBLIC, SMS_IN, begin, first_sms, state
from tests.workflows.callout_helpers import outbox, targets, wait_for

env, fake, flow = twilio.env, twilio.fake, twilio.flow  # its fixtures: the same set-up


def intake_rows() -> list[AnswerIntake]:
    with session_scope(write=False) as s:
        return list(s.exec(select(AnswerIntake).order_by(AnswerIntake.id)))


def acks_of(cid: str, person: str) -> int:
    with session_scope(write=False) as s:
        return s.exec(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.subject == cid, AuditEvent.kind == "callout.ack",
            AuditEvent.payload["person_id"].as_string() == person)).one()


def first_round_recorded(cid: str) -> bool:
    """Every target notified and no message of the call-out still being sent: the first flush has committed."""
    rows = outbox(cid)
    return bool(rows) and all(m.status != "sending" for m in rows) and all(
        t.state != "pending" for t in targets(cid).values())


def stale_now(app) -> None:
    """Every claim is stale from now on (instead of waiting YINGJI_ANSWER_RETRY_S)."""
    app.state.intake.settings = app.state.intake.settings.model_copy(update={"answer_retry_s": 0.000001})


async def test_reply_while_temporal_is_unreachable_is_stored_and_taken_up_after(flow):
    cid = await begin(flow)
    resp = flow.people["330110001001.resp"]
    msg = await first_sms(flow, cid, resp)
    app = create_app(temporal_client=flow.env.client)
    down = asyncio.Event()
    down.set()

    async def temporal():
        return None if down.is_set() else flow.env.client

    app.state.intake.temporal = temporal
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=PUBLIC) as http:
        r = await flow.fake.inbound_sms(http, SMS_IN, msg.to, "收到")
    assert r.status_code == 200 and "<Message>" not in r.text  # stored: no 503 for the gateway to retry
    [row] = intake_rows()
    assert row.kind == "sms" and row.done_at is None and row.payload["from"] == msg.to
    assert state(cid, resp).state != "acknowledged"

    down.clear()  # Temporal is back; the sweeper finds the answer (its claim stale) and processes it
    stale_now(app)
    assert await app.state.intake.sweep_once() == 1
    await wait_for(lambda: state(cid, resp).state == "acknowledged", what="the stored reply taken up")
    [row] = intake_rows()
    assert row.done_at is not None and row.outcome["handled"] == "ack" and row.attempts == 2
    assert await app.state.intake.sweep_once() == 0  # done: never processed again


async def test_api_gone_after_storing_another_process_takes_the_answer_once(flow):
    cid = await begin(flow)
    resp = flow.people["330110001001.resp"]
    msg = await first_sms(flow, cid, resp)
    first = create_app(temporal_client=flow.env.client)
    first.state.intake.settings = first.state.intake.settings.model_copy(update={"answer_wait_s": 0.05})
    stuck, reached = asyncio.Event(), asyncio.Event()
    real_one = first.state.intake._one

    async def never_processes(client, item):  # the process stops right after storing (a barrier, held)
        reached.set()
        await stuck.wait()
        return await real_one(client, item)

    first.state.intake._one = never_processes
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=first), base_url=PUBLIC) as http:
        r = await flow.fake.inbound_sms(http, SMS_IN, msg.to, "1")
    assert r.status_code == 200
    await asyncio.wait_for(reached.wait(), 60)
    assert state(cid, resp).state != "acknowledged"

    second = create_app(temporal_client=flow.env.client)  # another API process (or the same one restarted)
    assert await second.state.intake.sweep_once() == 0  # the first one's claim is fresh: not taken from it
    stale_now(second)
    assert await second.state.intake.sweep_once() == 1
    await wait_for(lambda: state(cid, resp).state == "acknowledged", what="the answer taken by the other process")
    [row] = intake_rows()
    assert row.done_at is not None and row.claimed_by == second.state.intake.owner

    stuck.set()  # the first process was only slow after all: it processes the same answer again
    await wait_for(lambda: not first.state.intake.processing, what="the first process done")
    with session_scope(write=False) as s:
        inbound = list(s.exec(select(InboundMessage).where(InboundMessage.from_number == msg.to)))
    assert len(inbound) == 1 and inbound[0].handled == "ack"  # one reply in the inbox
    assert acks_of(cid, resp) == 1  # one acknowledgement in the trail
    assert state(cid, resp).ack_channel == "sms"


async def test_reply_the_database_cannot_store_is_refused_with_retry_after(flow, db_url, monkeypatch):
    cid = await begin(flow)
    resp = flow.people["330110001001.resp"]
    msg = await first_sms(flow, cid, resp)
    # The lock must meet the reply alone: a flush still recording the first round would fail on it too, and its
    # retry waits out the lease of each send whose answer it could not record (activities/delivery/send.py).
    await wait_for(lambda: first_round_recorded(cid), what="the first round's sends all recorded")
    with monkeypatch.context() as m:  # the database is locked, and connections wait only 0.2 s for it
        m.setenv("YINGJI_DB_BUSY_TIMEOUT_MS", "200")
        get_settings.cache_clear()
        dispose_all()
        lock = sqlite3.connect(db_url.split("///", 1)[1], isolation_level=None, timeout=30)
        lock.execute("BEGIN EXCLUSIVE")
        try:
            r = await flow.fake.inbound_sms(flow.http, SMS_IN, msg.to, "1")
        finally:
            lock.execute("ROLLBACK")
            lock.close()
    get_settings.cache_clear()  # the database is back: connections wait as usual again
    dispose_all()
    assert r.status_code == 503 and r.headers["Retry-After"].isdigit(), r.text
    assert "send it again" in r.json()["detail"]
    assert intake_rows() == []  # nothing stored, nothing claimed as taken

    again = await flow.fake.inbound_sms(flow.http, SMS_IN, msg.to, "1")  # Twilio's retry (rc/rp in the URL)
    assert again.status_code == 200
    await wait_for(lambda: state(cid, resp).state == "acknowledged", what="the retried reply")


async def test_past_the_pending_bound_nothing_is_taken_503(flow):
    cid = await begin(flow)
    msg = await first_sms(flow, cid, flow.people["330110001001.resp"])
    app = create_app(temporal_client=flow.env.client)
    app.state.intake.settings = app.state.intake.settings.model_copy(update={"answer_max_pending": 1})
    storing, release = asyncio.Event(), asyncio.Event()
    real_many = app.state.intake.storing.many
    loop = asyncio.get_running_loop()

    def slow_many(items):  # the database slow to commit (a barrier on the storing thread)
        loop.call_soon_threadsafe(storing.set)
        asyncio.run_coroutine_threadsafe(release.wait(), loop).result(60)
        return real_many(items)

    app.state.intake.storing.many = slow_many
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=PUBLIC) as http:
        first = asyncio.create_task(flow.fake.inbound_sms(http, SMS_IN, msg.to, "1"))
        await asyncio.wait_for(storing.wait(), 60)
        more = [asyncio.create_task(flow.fake.inbound_sms(http, SMS_IN, msg.to, "1")) for _ in range(2)]
        # one of the two waits to be stored (the bound: 1 pending), the other is refused at once
        done, waiting = await asyncio.wait(more, timeout=60, return_when=asyncio.FIRST_COMPLETED)
        [refused] = done
        release.set()
        assert (await first).status_code == 200
        assert (await waiting.pop()).status_code == 200
    r = refused.result()
    assert r.status_code == 503 and r.headers["Retry-After"].isdigit(), r.text
    assert len(intake_rows()) == 2
