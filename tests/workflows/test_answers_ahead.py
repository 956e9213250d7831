"""An answer that comes while a shard's batch of sends is still going out is recorded at once by a local activity,
ahead of the batch (workflows/escalation/host.py `answering_meanwhile`), and stays recorded when the batch, decided
before it, is written after it. At a district-wide escalation a shard's batch takes most of a minute; answers held
behind it were that late on the board (issue 25, docs/performance.md "Answers recorded by themselves")."""
from __future__ import annotations

import asyncio
import concurrent.futures
import uuid
from datetime import UTC, datetime, timedelta

from sqlmodel import select
from temporalio import activity
from temporalio.worker import Worker

from activities import all_activities
from activities import callout as callout_activities
from activities.heartbeat import HeartbeatInterceptor
from api.services.replay import replay_subject
from store.db import session_scope
from tests.workflows.callout_helpers import (
    DEFINITIONS,
    ack,
    callout_input,
    events,
    outbox,
    people,  # noqa: F401 - the shared fixture
    start,
    targets,
    terminate_callouts,
    wait_for,
)
from workflows import all_workflows
from workflows.callout import FlushBody, FlushRequest
from workflows.kit.names import Callout as CalloutNames


async def test_an_answer_during_a_batch_is_recorded_before_the_batch_and_stays(env, db_url, people):
    held, release = asyncio.Event(), asyncio.Event()
    records_only: list[tuple[bool, list[str]]] = []  # (local?, record kinds) of each batch without sends

    @activity.defn(name=CalloutNames.FLUSH)
    async def flush(req: FlushRequest):
        body = FlushBody.unpack(req.packed) if req.packed else FlushBody(refs=[], records=req.records)
        if not body.refs:
            records_only.append((activity.info().is_local, [r.kind for r in body.records]))
        elif not held.is_set() and any(ref.channel == "voice" for ref in body.refs):
            held.set()  # the second round (voice after the SMS wait ran out): held until released
            await release.wait()
        return await callout_activities.flush(req)

    tq = f"tq-{uuid.uuid4().hex[:8]}"
    activities = [a for a in all_activities() if a is not callout_activities.flush] + [flush]
    async with Worker(env.client, task_queue=tq, workflows=all_workflows(), activities=activities,
                      activity_executor=concurrent.futures.ThreadPoolExecutor(max_workers=8),
                      interceptors=[HeartbeatInterceptor()]):  # the held batch beats: not retried meanwhile
        inp = callout_input()
        await start(env.client, tq, inp)
        resp = people["330110001001.resp"]
        await wait_for(lambda: outbox(inp.callout_id, person_id=resp), what="first messages")
        # the SMS wait runs out: timeouts and voice calls (the clock moved just past it: a skip past the held batch's
        # heartbeat timeout would have it retried)
        await env.sleep(timedelta(minutes=10, seconds=2))
        try:
            await asyncio.wait_for(held.wait(), 30)
            assert not [e for e in events(inp.callout_id, "callout.timeout") if e.payload["person_id"] == resp]

            await ack(env.client, inp.callout_id, resp, "sms")  # answered while the voice round is held
            row = await wait_for(lambda: (t := targets(inp.callout_id)[resp]).state == "acknowledged" and t,
                                 what="the answer recorded while the batch is held")
            assert row.ack_by == resp and row.ack_channel == "sms" and not row.ack_late
            [answer] = events(inp.callout_id, "callout.ack")
            assert answer.payload["person_id"] == resp
            assert answer.chain == f"{answer.workflow_id}/answers"  # its shard's answers lane, not the batch's chain
            assert records_only == [(True, ["ack"])]  # records only, by a local activity
        finally:
            release.set()

        # the held batch is written after the answer: its timeout record for `resp` (state "notified", decided
        # before the answer) leaves the target acknowledged, in the read model and in the supervisors' replay
        await wait_for(lambda: [e for e in events(inp.callout_id, "callout.timeout") if e.payload["person_id"] == resp],
                       what="the held batch's records")
        trail = [e.kind for e in events(inp.callout_id) if e.payload.get("person_id") == resp]
        assert trail.index("callout.ack") < trail.index("callout.timeout")  # written in that order
        assert targets(inp.callout_id)[resp].state == "acknowledged"
        with session_scope(write=False) as s:
            replayed = replay_subject(s, inp.callout_id, datetime.now(UTC) + timedelta(days=1), DEFINITIONS,
                                      cache=None)
        [mine] = [t for t in replayed["targets"] if t["person_id"] == resp]
        assert mine["state"] == "acknowledged" and mine["ack_by"] == resp
        await terminate_callouts(env.client)


def test_the_answers_of_shards_written_together_and_a_failing_shard_alone(db_url):
    """`_write_answers` writes the answers that several shards' local activities hand in at once in one
    transaction; when that fails, each shard's is written alone: the others are recorded, the failing one gets
    its own error (its activity is retried), and nothing of it is written."""
    from activities.callout import _write_answers
    from workflows.escalation import Record
    from workflows.kit.events import UnknownEventKind

    inp, now = callout_input(), datetime.now(UTC)

    def answers(shard: int, kind: str = "ack") -> FlushRequest:
        rec = Record(kind=kind, step_id=f"t{shard}/ack/0.0/p{shard}sms", target_key=f"t{shard}", person_id=f"p{shard}",
                     channel="sms", actor=f"p{shard}", at=now, state="acknowledged")
        return FlushRequest(callout_id=inp.callout_id, workflow_id=f"{inp.callout_id}/shard-{shard}", run_id="r",
                            plan=inp.plan, warning=inp.warning, packed=FlushBody(records=[rec]).pack())

    assert _write_answers([(callout_activities.unpack(answers(n)), now) for n in (0, 1)]) == [None, None]
    out = _write_answers([(callout_activities.unpack(r), now) for r in (answers(2), answers(3, "no-such-kind"),
                                                                         answers(4))])
    assert out[0] is None and out[2] is None and isinstance(out[1], UnknownEventKind)
    assert sorted(e.payload["person_id"] for e in events(inp.callout_id)) == ["p0", "p1", "p2", "p4"]
    assert {e.chain for e in events(inp.callout_id)} == {f"{inp.callout_id}/shard-{n}/answers" for n in (0, 1, 2, 4)}


def test_a_group_larger_than_a_statement_is_written_in_parts(db_url, monkeypatch):
    """A burst's group of answers can hold more than a statement takes parameters (SQLite 32,766, psycopg 65,535):
    `_record_answers` writes it in parts of at most `ANSWERS_PER_STATEMENT` answers, a shard's never cut, all in
    the one transaction."""
    from activities.callout import _parts, _write_answers
    from workflows.escalation import Record

    inp, now = callout_input(), datetime.now(UTC)

    def answers(shard: int, n: int) -> FlushRequest:
        recs = [Record(kind="ack", step_id=f"t{shard}-{i}/ack/0.0/p{shard}-{i}sms", target_key=f"t{shard}-{i}",
                       person_id=f"p{shard}-{i}", channel="sms", actor=f"p{shard}-{i}", at=now, state="acknowledged")
                for i in range(n)]
        return FlushRequest(callout_id=inp.callout_id, workflow_id=f"{inp.callout_id}/shard-{shard}", run_id="r",
                            plan=inp.plan, warning=inp.warning, packed=FlushBody(records=recs).pack())

    group = [(callout_activities.unpack(answers(shard, n)), now) for shard, n in ((0, 1), (1, 2), (2, 1), (3, 1))]
    assert [[b[0].workflow_id[-1] for b in part] for part in _parts(group, 2)] == [["0"], ["1"], ["2", "3"]]
    monkeypatch.setattr(callout_activities, "ANSWERS_PER_STATEMENT", 2)
    appends: list[int] = []
    real_append = callout_activities.append
    monkeypatch.setattr(callout_activities, "append", lambda s, evs: appends.append(len(evs)) or real_append(s, evs))
    assert _write_answers(group) == [None] * 4
    assert appends == [1, 2, 2]  # three parts, one transaction (the group's write did not fail over to each alone)
    written = events(inp.callout_id)
    assert sorted(e.payload["person_id"] for e in written) == ["p0-0", "p1-0", "p1-1", "p2-0", "p3-0"]
    assert {e.chain for e in written} == {f"{inp.callout_id}/shard-{n}/answers" for n in range(4)}


def test_a_target_row_is_stamped_when_it_is_written_not_when_its_flush_began(db_url):
    """A live board polls the targets whose updated_at is at or after its last poll's newest, less a 2 s overlap
    (api/console/board.py): a row stamped with its flush's start and committed later than that was never shown. The
    answers of a group that waited for the group before it are written with `now` from before the wait; their rows
    carry the write's time."""
    from activities.callout import _write_answers
    from store.callouts import Callout, CalloutTarget
    from workflows.escalation import Record

    inp = callout_input()
    flush_began = datetime.now(UTC) - timedelta(minutes=5)  # a flush that waited (an exaggerated wait)
    with session_scope() as s:
        s.add(Callout(id=inp.callout_id, plan_id="p", plan_version="1", level="red", category="rain"))
        s.flush()
        s.add(CalloutTarget(callout_id=inp.callout_id, target_key="t0", tier="village", position_code="vfc",
                            org_unit_id="u", person_id="p0", name="p0", state="notified", updated_at=flush_began))
    rec = Record(kind="ack", step_id="t0/ack/0.0/p0sms", target_key="t0", person_id="p0", channel="sms", actor="p0",
                 at=flush_began, state="acknowledged")
    req = FlushRequest(callout_id=inp.callout_id, workflow_id=f"{inp.callout_id}/shard-0", run_id="r", plan=inp.plan,
                       warning=inp.warning, packed=FlushBody(records=[rec]).pack())
    before_write = datetime.now(UTC)
    assert _write_answers([(callout_activities.unpack(req), flush_began)]) == [None]
    with session_scope(write=False) as s:
        row = s.exec(select(CalloutTarget).where(CalloutTarget.callout_id == inp.callout_id)).one()
    assert row.state == "acknowledged" and row.acknowledged_at == flush_began  # the answer's own time, as given
    assert row.updated_at >= before_write, "stamped with the flush's start: a board past it never shows the answer"
