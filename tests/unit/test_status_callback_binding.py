"""A Twilio SMS status callback finds its message by the outbox id its URL names (`?o=`), records the provider id
when the send's result is not in yet and updates the status, in one transaction (store.messages.sent_message);
a URL naming a message sent under another id is a 404 that changes nothing; without `?o=` the provider id finds it."""
from __future__ import annotations

from sqlmodel import select

from store.db import session_scope
from store.messages import OutboxMessage
from tests.unit import test_twilio_signature as twilio_signature
from tests.unit.test_twilio_signature import PUBLIC, signed

app_client = twilio_signature.app_client  # the same fixture: an app whose Temporal client refuses every workflow


def _row(key: str, provider_id: str | None) -> int:
    with session_scope() as s:
        row = OutboxMessage(idempotency_key=key, channel="sms", to="+8613800000001", body="x", status="sent",
                            provider_id=provider_id)
        s.add(row)
        s.flush()
        return row.id


def _get(outbox_id: int) -> OutboxMessage:
    with session_scope(write=False) as s:
        return s.get(OutboxMessage, outbox_id)


async def _status(client, query: str, sid: str, status: str):
    path = f"/api/webhooks/twilio/sms/status{query}"
    body = f"MessageSid={sid}&SmsSid={sid}&MessageStatus={status}&AccountSid=AC1"
    return await client.post(path, content=body, headers=signed(f"{PUBLIC}{path}", body, "current-token"))


async def test_a_callback_before_the_send_result_binds_and_updates_in_one_go(app_client):
    early = _row("k-early", None)
    resp = await _status(app_client, f"?o={early}", "SMearly", "delivered")
    assert resp.status_code == 200, resp.text
    row = _get(early)
    assert (row.provider_id, row.status) == ("SMearly", "delivered")
    resp = await _status(app_client, f"?o={early}", "SMearly", "sent")  # a progress callback after it: no step back
    assert resp.status_code == 200 and resp.json() == {"handled": "progress"}
    assert _get(early).status == "delivered"


async def test_a_url_naming_another_message_is_404_and_changes_nothing(app_client):
    other = _row("k-other", "SMother")
    resp = await _status(app_client, f"?o={other}", "SMstranger", "delivered")
    assert resp.status_code == 404, resp.text
    row = _get(other)
    assert (row.provider_id, row.status) == ("SMother", "sent")
    with session_scope(write=False) as s:
        assert s.exec(select(OutboxMessage).where(OutboxMessage.provider_id == "SMstranger")).first() is None
    resp = await _status(app_client, "", "SMother", "delivered")  # no ?o=: found by its provider id
    assert resp.status_code == 200, resp.text
    assert _get(other).status == "delivered"
    resp = await _status(app_client, "", "SMnobody", "delivered")
    assert resp.status_code == 404
    resp = await _status(app_client, f"?o={other}", "SMother", "bogus")  # a status Twilio does not send: ignored
    assert resp.status_code == 200 and resp.json()["handled"] == "ignored"
    assert app_client.temporal.handles == []  # no workflow sent these messages: nothing signalled


async def test_callbacks_that_arrive_together_are_written_together(app_client, monkeypatch):
    """A burst of status callbacks is one transaction (api/services/answers/reports.py's group commit), applied in
    arrival order; a callback about no message of ours is a 404 of its own and the others are written."""
    import asyncio

    from api.services.answers import reports

    import time

    batches: list[int] = []
    apply_many = reports._apply_statuses
    commit = reports._status_commit()

    def counted(items):
        if not batches:  # the barrier: the first transaction waits until the other callbacks are waiting for it
            deadline = time.monotonic() + 30
            while len(items) + len(commit) < 4 and time.monotonic() < deadline:
                time.sleep(0.01)
        batches.append(len(items))
        return apply_many(items)

    monkeypatch.setattr(commit, "many", counted)
    a, b = _row("k-a", "SMa"), _row("k-b", None)
    got = await asyncio.gather(_status(app_client, f"?o={a}", "SMa", "delivered"),
                               _status(app_client, f"?o={b}", "SMb", "sent"),
                               _status(app_client, "", "SMnobody", "delivered"),
                               _status(app_client, f"?o={b}", "SMb", "delivered"))
    assert [r.status_code for r in got] == [200, 200, 404, 200], [r.text for r in got]
    assert sum(batches) == 4 and len(batches) <= 2, batches  # the first alone at most, then the rest together
    assert (_get(a).status, _get(b).status, _get(b).provider_id) == ("delivered", "delivered", "SMb")
