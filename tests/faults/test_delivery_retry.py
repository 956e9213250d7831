"""A send retried after a crash goes out as it was first written, once.

A retried flush renders its messages again, and each rendering signs a new acknowledgement
link: a different text. The retry must still recognise the message the gateway already holds
(Twilio: by number and text), and a message it must send now goes out with the outbox row's
text, so that the link the person gets is the one on record.
"""
from __future__ import annotations

import asyncio

import pytest
from sqlmodel import select

from datetime import UTC, datetime, timedelta

from sqlalchemy import update

from activities.delivery import Claim, Delivery, _begin_call, _claim, deliver
from activities.gateways import OutgoingMessage, gateway_for, reset_gateways
from store.db import session_scope
from store.messages import OutboxMessage
from tests.fakes.twilio_server import FakeTwilio, use_fake_twilio


def message(n: int, link: str) -> Delivery:
    return Delivery(key=f"callout-r/shard-0/t{n}/0/sms", channel="sms", to=f"+86139000{n:05d}",
                    body=f"【叫应】暴雨橙色预警 请点击 http://y.test/ack/{link}", ack_url=f"http://y.test/ack/{link}",
                    person_id=f"p{n}", subject="callout-r")


@pytest.fixture
def fake(db_url, monkeypatch):
    with FakeTwilio() as f:
        use_fake_twilio(monkeypatch, f)
        yield f
    reset_gateways()


async def test_a_message_the_gateway_got_before_the_crash_is_found_though_rendered_again(fake):
    first = [message(1, "first-rendering-aaaaaaaaaaaa"), message(2, "first-rendering-bbbbbbbbbbbb")]
    crashed = Claim("wf/run/1", 1)  # the attempt that dies: a retry is another attempt
    claimed = await asyncio.to_thread(_claim, first, crashed)
    row = claimed[first[0].key]  # Twilio got the first one, then the worker died
    assert await asyncio.to_thread(_begin_call, row["id"], crashed)  # the fence it passed before asking Twilio
    with session_scope() as s:  # the retry comes after the heartbeat timeout: the call has surely ended
        s.execute(update(OutboxMessage).where(OutboxMessage.id == row["id"])
                  .values(gateway_at=datetime.now(UTC) - timedelta(minutes=1)))
    sid = (await gateway_for("sms").send(OutgoingMessage(
        outbox_id=row["id"], idempotency_key=first[0].key, channel="sms", to=first[0].to, body=first[0].body,
        created_at=row["created_at"]))).provider_id
    retry = [message(1, "second-rendering-cccccccccc"), message(2, "second-rendering-dddddddddd")]
    outcomes = {o.key: o for o in await deliver(retry)}
    bodies = [r.one("Body") for r in fake.created()]
    assert len(bodies) == 2, bodies  # once each
    assert outcomes[first[0].key].provider_id == sid
    assert bodies[1] == first[1].body  # the one not sent before goes out as written on record
    with session_scope(write=False) as s:
        rows = {r.idempotency_key: r for r in s.exec(select(OutboxMessage))}
    assert rows[first[1].key].body == first[1].body and rows[first[1].key].ack_url == first[1].ack_url


async def test_the_simulator_delivers_a_row_left_sending(db_url):
    item = message(3, "only-rendering-eeeeeeeeeeee")
    await asyncio.to_thread(_claim, [item])  # claimed, then the worker died
    [out] = await deliver([message(3, "again-rendering-ffffffffff")])
    assert out.status == "sent" and out.error is None  # its network is the row: nothing is sent twice
    with session_scope(write=False) as s:
        row = s.exec(select(OutboxMessage)).one()
    assert row.status == "sent" and row.body == item.body
