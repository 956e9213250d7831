"""An answer is on the board as soon as the API has stored it, before its workflow records it (issue 25).

Under a district-wide call-out the worker is seconds behind its sends and escalations; the answer waits for the
shard's turn to be recorded (state, acknowledged_at, the trail's event). The API adds a row (store/callouts.py
`CalloutAnswer`) for each of the person's targets as it matches the answer (an SMS reply in the transaction that
stores and matches it, a link's confirmation beside the signal to its workflow), and the board shows
"已收到回复,正在记录".
Here the worker is stopped while the answers come, so the workflow cannot have recorded them: what the board
shows is the API's alone. Then a worker comes back and records them. Time-skipping test server, the real API,
workflows and activities.
"""
from __future__ import annotations

import asyncio
import io
import uuid
from datetime import timedelta

import httpx
import pytest
from openpyxl import load_workbook
from sqlmodel import select

from api.console.pages import library
from api.services import board as board_svc
from store.answers import mark_answered
from store.audit import verify
from store.callouts import CalloutTarget
from store.db import session_scope
from store.messages import OutboxMessage
from tests.helpers import console_page
from tests.workflows.callout_helpers import (answered, callout_input, duty_api, events, outbox, start, targets,
                                            wait_for)
from worker import build_worker


@pytest.fixture
async def api(env, db_url, monkeypatch):
    async with duty_api(env, monkeypatch, "shown") as client:  # no worker: each test runs its own
        yield client


def first_sms(callout_id: str, person_id: str):
    return next(m for m in outbox(callout_id, person_id=person_id) if m.provider_id and m.channel == "sms")


def row_of(callout_id: str, person_id: str) -> CalloutTarget:
    return next(t for t in targets(callout_id).values() if t.person_id == person_id)


async def test_answers_are_on_the_board_before_the_workflow_records_them(env, api):
    head, resp = api.people["D01.head"], api.people["330110001001.resp"]
    inp = callout_input()
    # no workflow cached: the time-skipping server gives a stopped worker's sticky tasks to no other worker
    async with build_worker(env.client, task_queue=api.tq, max_cached_workflows=0):
        await start(env.client, api.tq, inp)
        await wait_for(lambda: outbox(inp.callout_id, person_id=head) and outbox(inp.callout_id, person_id=resp),
                       what="the head and a village person notified")
        await wait_for(lambda: all(m.provider_id for p in (head, resp) for m in outbox(inp.callout_id, person_id=p)),
                       what="their messages sent")
    # the worker has stopped: nothing records an answer until one runs again
    with session_scope(write=False) as s:
        cursor = s.exec(select(CalloutTarget.updated_at).where(CalloutTarget.callout_id == inp.callout_id)
                        .order_by(CalloutTarget.updated_at.desc())).first()

    r = await api.post(f"/api/simulator/messages/{first_sms(inp.callout_id, head).id}", json={"outcome": "reply"})
    assert r.status_code == 200 and r.json()["handled"] == "ack", r.text
    page = await api.post(httpx.URL(first_sms(inp.callout_id, resp).ack_url).path)  # the signed link's button
    assert page.status_code == 200, page.text

    # a board already open gets both at its next poll: shown answered, not yet acknowledged
    with session_scope(write=False) as s:
        rows, _ = board_svc.changed_rows(s, library(), inp.callout_id, cursor + timedelta(microseconds=1))
    shown = {r["person_id"]: r for r in rows if r["answered_at"]}
    assert set(shown) == {head, resp}
    assert all(r["ack_at"] is None and r["state"] in ("pending", "notified") for r in shown.values())
    assert not events(inp.callout_id, "callout.ack")  # the trail has no acknowledgement yet: nobody recorded one
    board = await console_page(api.app, api.token, f"/console/callouts/{inp.callout_id}")
    assert board.status_code == 200 and board.text.count("已收到回复,正在记录") == 2
    # and so do the API's call-out and its targets' sheet: answered, not yet acknowledged
    detail = (await api.get(f"/api/callouts/{inp.callout_id}")).json()
    in_api = {t["person_id"]: t for t in detail["targets"] if t["answered_at"]}
    assert set(in_api) == {head, resp} and all(t["acknowledged_at"] is None for t in in_api.values())
    sheet = await console_page(api.app, api.token, f"/console/export/callouts/{inp.callout_id}.xlsx")
    header, *lines = load_workbook(io.BytesIO(sheet.content)).active.iter_rows(values_only=True)
    received, recorded = header.index("收到回复时间"), header.index("应答时间")
    assert sum(1 for line in lines if line[received] is not None and line[recorded] is None) == 2

    # a worker again: the shards record the answers, at the time they were received
    async with build_worker(env.client, task_queue=api.tq):
        await wait_for(lambda: all(row_of(inp.callout_id, p).state == "acknowledged" for p in (head, resp)),
                       timeout=60, what="both acknowledged by their shards")
    first = answered(inp.callout_id)
    for person, channel in ((head, "sms"), (resp, "link")):
        row = row_of(inp.callout_id, person)
        assert row.acknowledged_at == first[person] and row.ack_channel == channel and not row.ack_late
    assert {e.payload["person_id"] for e in events(inp.callout_id, "callout.ack")} >= {head, resp}
    with session_scope(write=False) as s:
        assert verify(s).ok


async def test_an_open_board_is_sent_each_answer_as_it_is_stored_before_its_next_poll(env, api, monkeypatch):
    """A live board (server-sent events) polls every 0.5 s; the answers this API process stores are sent to it as
    soon as they commit (api/services/answers/shown.py), an SMS reply's and a signed link's alike. Here the board's
    pause between two polls is a gate the test never opens, so a row can reach it only by being told of."""
    from api.console import auth, streams
    from config import get_settings
    from store.auth import lookup_token
    from tests.security.asgi import Stream, until

    head, resp = api.people["D01.head"], api.people["330110001001.resp"]
    inp = callout_input()
    async with build_worker(env.client, task_queue=api.tq, max_cached_workflows=0):
        await start(env.client, api.tq, inp)
        await wait_for(lambda: all(outbox(inp.callout_id, person_id=p) and all(
            m.provider_id for m in outbox(inp.callout_id, person_id=p)) for p in (head, resp)),
            what="the head and a village person notified")
    polls: list[str] = []
    changed_rows = board_svc.changed_rows

    def counted(s, lib, callout_id, since, *rest):
        polls.append(callout_id)
        return changed_rows(s, lib, callout_id, since, *rest)

    async def never():  # the board's next poll never comes
        await asyncio.Event().wait()

    monkeypatch.setattr(board_svc, "changed_rows", counted)
    monkeypatch.setattr(streams.Broadcaster, "pause", lambda self: never())
    with session_scope(write=False) as s:
        token_id = lookup_token(s, api.token).id
    cookie = f"{auth.COOKIE}={auth.session_cookie(get_settings(), {'m': 'token', 't': token_id})}"
    board = Stream(api.app, f"/console/callouts/{inp.callout_id}/stream", cookie)

    def answered_on_board(person: str) -> bool:
        return any(r["person_id"] == person and r["answered_at"] and r["state"] != "acknowledged"
                   for kind, rows in board.events if kind == "rows" for r in rows)

    try:
        await until("the board's first poll", lambda: any(kind == "status" for kind, _ in board.events))
        assert not answered_on_board(head) and not answered_on_board(resp)
        r = await api.post(f"/api/simulator/messages/{first_sms(inp.callout_id, head).id}", json={"outcome": "reply"})
        assert r.status_code == 200 and r.json()["handled"] == "ack", r.text
        await until("the SMS reply on the open board", lambda: answered_on_board(head))
        page = await api.post(httpx.URL(first_sms(inp.callout_id, resp).ack_url).path)  # the signed link's button
        assert page.status_code == 200, page.text
        await until("the link's answer on the open board", lambda: answered_on_board(resp))
        assert polls == [inp.callout_id], "one poll, the first: the answers came as they were stored"
    finally:
        await board.close()


async def test_only_the_persons_open_targets_are_marked(env, api):
    """`mark_answered` marks the person's own targets, once (the first answer's time), never a target already
    acknowledged; a person with no target of their own (a deputy) marks those their calls were sent for; an answer
    to a subject that is no call-out marks nothing."""
    head, resp = api.people["D01.head"], api.people["330110001001.resp"]
    inp = callout_input()
    async with build_worker(env.client, task_queue=api.tq):
        await start(env.client, api.tq, inp)
        await wait_for(lambda: all(m.provider_id for p in (head, resp) for m in outbox(inp.callout_id, person_id=p))
                       and outbox(inp.callout_id, person_id=resp), what="the head and a village person notified")
    with session_scope() as s:
        row = s.exec(select(CalloutTarget).where(CalloutTarget.callout_id == inp.callout_id,
                                                 CalloutTarget.person_id == resp)).one()
        row.acknowledged_at, row.state = first_sms(inp.callout_id, resp).created_at, "acknowledged"
        s.add(row)
    at = first_sms(inp.callout_id, head).created_at + timedelta(seconds=5)
    # a deputy escalated to for another village's target (the message as a shard's escalation writes it)
    other = next(t for t in targets(inp.callout_id).values() if t.person_id not in (head, resp))
    with session_scope() as s:
        s.add(OutboxMessage(idempotency_key=f"esc-{uuid.uuid4().hex}", channel="sms", to="+8613900000000",
                            person_id="p-deputy-of-other", subject=inp.callout_id, workflow_id=f"{inp.callout_id}/shard-0",
                            body="叫应", status="sent", meta={"target_key": other.target_key, "purpose": "escalate"}))
    with session_scope() as s:
        marked = mark_answered(s, [(inp.callout_id, head, at), (inp.callout_id, head, at + timedelta(seconds=3)),
                                   (inp.callout_id, resp, at), ("INC-none", head, at), (inp.callout_id, "nobody", at),
                                   (inp.callout_id, "p-deputy-of-other", at + timedelta(seconds=1))])
    assert len(marked) == 2 and {cid for cid, _ in marked} == {inp.callout_id}
    with session_scope() as s:
        assert len(mark_answered(s, [(inp.callout_id, head, at - timedelta(seconds=1))])) == 0  # shown once only
    assert answered(inp.callout_id) == {head: at, other.person_id: at + timedelta(seconds=1)}
    with session_scope(write=False) as s:  # a board's poll since just before: the two rows, answered
        rows, _ = board_svc.changed_rows(s, library(), inp.callout_id, max(t.updated_at for t in targets(
            inp.callout_id).values()) + timedelta(microseconds=1))
    assert {r["person_id"]: r["answered_at"] for r in rows} == {
        head: at.isoformat(), other.person_id: (at + timedelta(seconds=1)).isoformat()}
