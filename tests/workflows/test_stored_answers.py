"""A person who answered within the wait is not escalated because their answer's signal came after the deadline.

The API stores an answer (the board shows it, store/answers.py `mark_answered`) and signals its shard; under a
district-wide call-out the signal reached the shard seconds after the deadline of someone who had answered before
it, and they were escalated (100 of 11,447 answers within the wait at 100,000 persons, issue 25). Before a wait runs
out the shard now asks the store (workflows/escalation/host.py `hold_for_stored`): a target the API has an answer
for waits on for its signal (`STORED_HOLD`), once. Here the answer is stored and its signal held back, as the
API's would be behind a busy worker: time-skipping test server, the real workflows, activities and database."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

from store.answers import mark_answered
from store.db import session_scope
from tests.workflows.callout_helpers import (  # noqa: F401 - the shared fixtures
    ack,
    callout_input,
    events,
    outbox,
    people,
    start,
    targets,
    wait_for,
    worker,
)
from workflows.escalation.host import STORED_HOLD


def _timed_out(callout_id: str, person_id: str) -> bool:
    return any(e.payload.get("person_id") == person_id for e in events(callout_id, "callout.timeout"))


def _voice(callout_id: str, person_id: str) -> list:
    return [m for m in outbox(callout_id, person_id=person_id) if m.channel == "voice"]


async def _answer_stored_then_deadline(env, tq: str, people) -> tuple[str, str]:
    """A call-out whose village person has answered (stored by the API, not signalled) before the SMS wait runs
    out; returns (call-out, the person who answered) once the shard has passed the deadline (the town head, who did
    not answer, has timed out: the barrier)."""
    inp = callout_input()
    await start(env.client, tq, inp)
    resp, head = people["330110001001.resp"], people["330110001.head"]
    await wait_for(lambda: all(m.provider_id for p in (resp, head) for m in outbox(inp.callout_id, person_id=p))
                   and outbox(inp.callout_id, person_id=resp) and outbox(inp.callout_id, person_id=head),
                   what="the first messages sent")
    with session_scope() as s:  # the API has stored the answer; its signal to the shard has not come yet
        assert len(mark_answered(s, [(inp.callout_id, resp, datetime.now(UTC))])) == 1
    # the SMS wait (10 min from each message's acceptance) runs out; the clock lands just past it, so that the deadline
    # is a recent one when the shard gets to it (`STORED_RECENT`), however long the messages took to be sent
    accepted = max(m.sent_at for p in (resp, head) for m in outbox(inp.callout_id, person_id=p))
    await env.sleep(accepted + timedelta(minutes=10, seconds=1) - await env.get_current_time())
    await wait_for(lambda: _timed_out(inp.callout_id, head), what="the deadline passed (the head timed out)")
    await wait_for(lambda: _voice(inp.callout_id, head), what="the head's voice call")
    return inp.callout_id, resp


async def test_an_answer_stored_before_the_deadline_is_waited_for_not_escalated(env, worker, people):
    cid, resp = await _answer_stored_then_deadline(env, worker, people)
    assert not _timed_out(cid, resp), "escalated although the API had stored the answer"
    assert not _voice(cid, resp)

    await ack(env.client, cid, resp, "sms")  # the answer's signal comes, within the hold
    row = await wait_for(lambda: (t := targets(cid)[resp]).state == "acknowledged" and t, what="the answer recorded")
    assert row.ack_by == resp and row.ack_channel == "sms" and not row.ack_late and not row.escalated_to
    await env.sleep(STORED_HOLD + timedelta(seconds=5))  # the hold's timer, had it been left, would fire now
    [answer] = events(cid, "callout.ack")
    assert answer.payload["person_id"] == resp
    assert not _timed_out(cid, resp) and not _voice(cid, resp)


async def test_a_stored_answer_whose_signal_never_comes_escalates_after_the_hold(env, worker, people):
    """The API stored the answer and then failed to signal it (its sender was told to try again, and did not): the
    wait runs out `STORED_HOLD` later, and the person is called as they would have been."""
    cid, resp = await _answer_stored_then_deadline(env, worker, people)
    assert not _timed_out(cid, resp)
    await env.sleep(STORED_HOLD + timedelta(seconds=5))
    await wait_for(lambda: _timed_out(cid, resp), what="the held wait ran out")
    await wait_for(lambda: _voice(cid, resp), what="the voice call after the hold")
    assert targets(cid)[resp].state != "acknowledged"
