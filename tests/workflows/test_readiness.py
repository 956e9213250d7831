"""The monthly readiness check 每月调度 on the time-skipping test server, with the real activities and database: three
teams' duty phones called by voice; one presses 1 (ready), one presses 2 (not ready), one does not answer: its
leader is called, then the duty chief told, and it ends not ready; the register marks the two 不能出动, the duty
chief gets the summary, the trail holds every answer, the API lists the results, the history replays."""
from __future__ import annotations

import asyncio
import uuid

import pytest

from api.services import answers
from api.services import readiness as svc
from store.audit import verify
from store.db import session_scope
from store.resources import ReadinessAnswer, ReadinessRun, RescueTeam
from tests.factories import small_district
from tests.helpers import replayer
from tests.workflows.callout_helpers import wait_for
from tests.workflows.duty_helpers import duty_settings, events, kinds, outbox, row, rows, terminate
from worker import build_worker
from workflows.readiness import ReadinessCheckWorkflow, ReadinessInput, team_person


@pytest.fixture
def people(db_url):
    with session_scope() as s:
        p = small_district(s, towns=2, villages=1)
        s.add_all([
            RescueTeam(id="T-A", name="水利防汛抢险队", kind="flood", strength=40, duty_phone="+8657186900201"),
            RescueTeam(id="T-B", name="民兵应急分队", kind="militia", strength=30, duty_phone="+8657186900202"),
            RescueTeam(id="T-C", name="急救中心救护队", kind="medical", strength=16, duty_phone="+8657186900203",
                       leader_id=p["330110001.head"]),
        ])
        return p


async def test_answered_1_and_2_and_no_answer_escalated_then_not_ready(env, db_url, people):
    queue = f"rd-{uuid.uuid4().hex[:8]}"
    rid = f"readiness-test-{uuid.uuid4().hex[:6]}"
    settings = duty_settings().readiness
    leader, chief = people["330110001.head"], people["duty_chief"]
    async with build_worker(env.client, task_queue=queue):
        try:
            h = await env.client.start_workflow(ReadinessCheckWorkflow.run,
                                                ReadinessInput(settings=settings, version="t", started_by=chief),
                                                id=rid, task_queue=queue)
            first = await wait_for(lambda: len(r := [m for m in outbox(rid) if m.provider_id]) == 3 and r,
                                   what="three duty phones called")
            msg = {m.person_id: m for m in first}
            assert set(msg) == {team_person("T-A"), team_person("T-B"), team_person("T-C")}
            assert {m.channel for m in first} == {"voice"} and msg[team_person("T-A")].to == "+8657186900201"
            assert "请按1" in msg[team_person("T-A")].body and "请按2" in msg[team_person("T-A")].body
            assert row(ReadinessRun, rid).status == "running"

            # T-A presses 1, T-B presses 2 (the keypress callbacks of their calls); T-C does not answer
            got = await answers.gateway_report(env.client, msg[team_person("T-A")].provider_id, "in-progress", digits="1")
            assert got["handled"] == "ack"
            await answers.gateway_report(env.client, msg[team_person("T-B")].provider_id, "in-progress", digits="2")
            await wait_for(lambda: {a.team_id: a.state for a in rows(ReadinessAnswer, run_id=rid)}.get("T-B")
                           == "not_ready", what="T-B's answer recorded")

            summary = await h.result()  # T-C: called again, its leader, the duty chief told; then the summary
            assert (summary.total, summary.ready, summary.not_ready, summary.no_answer) == (3, 1, 1, 1)
            assert summary.not_ready_teams == ["T-B"] and summary.no_answer_teams == ["T-C"]
            assert summary.sent_to == [chief]

            states = {a.team_id: a for a in rows(ReadinessAnswer, run_id=rid)}
            assert states["T-A"].state == "ready" and states["T-A"].answered_by == "duty_phone"
            assert states["T-B"].state == "not_ready" and states["T-C"].state == "no_answer"
            assert states["T-C"].escalated and not states["T-A"].escalated
            assert row(ReadinessRun, rid).status == "closed" and row(ReadinessRun, rid).no_answer == 1
            register = {t: row(RescueTeam, t).readiness for t in ("T-A", "T-B", "T-C")}
            assert register == {"T-A": "ready", "T-B": "unready", "T-C": "unready"}

            # the leader was called (voice and SMS), the duty chief told, and the summary sent to him
            to_leader = outbox(rid, leader)
            assert {m.channel for m in to_leader} == {"voice", "sms"}
            assert "无人接听" in next(m.body for m in to_leader if m.channel == "sms")
            to_chief = [m.body for m in outbox(rid, chief)]
            assert any("均未应答" in b for b in to_chief)
            final = next(b for b in to_chief if b.startswith("【每月调度】本月"))
            assert "在岗满员1支" in final and "民兵应急分队" in final and "急救中心救护队" in final
            assert "English" not in final and not any(c.isascii() and c.isalpha() for c in final)

            got_kinds = kinds(rid)
            assert got_kinds[0] == "readiness.opened" and got_kinds[-1] == "readiness.closed"
            assert got_kinds.count("readiness.answered") == 2 and got_kinds.count("readiness.no_answer") == 1
            assert got_kinds.count("readiness.marked_unready") == 2
            assert {"readiness.call.sent", "readiness.call.ack", "readiness.call.escalated",
                    "readiness.call.informed", "readiness.call.unreachable"} <= set(got_kinds)
            answered = {e.payload["team"]: e.payload for e in events(rid, "readiness.answered")}
            assert answered["T-A"]["answer"] == "ready" and answered["T-B"]["key"] == "2"
            with session_scope(write=False) as s:
                assert verify(s, rid).ok
                listed = svc.run(s, rid)
                assert {t["team_id"]: t["state_zh"] for t in listed["teams"]} == {
                    "T-A": "在岗满员", "T-B": "不能满员在岗", "T-C": "无人应答"}
                assert svc.runs(s)[0]["id"] == rid

            await replayer(ReadinessCheckWorkflow).replay_workflow(await h.fetch_history())
        finally:
            await terminate(env.client, [rid])


async def test_no_teams_still_ends_with_a_summary(env, db_url):
    with session_scope() as s:
        small_district(s, towns=1, villages=1)
    queue = f"rd-{uuid.uuid4().hex[:8]}"
    rid = f"readiness-empty-{uuid.uuid4().hex[:6]}"
    async with build_worker(env.client, task_queue=queue):
        h = await env.client.start_workflow(ReadinessCheckWorkflow.run, ReadinessInput(settings=duty_settings().readiness),
                                            id=rid, task_queue=queue)
        summary = await h.result()
    assert summary.total == 0 and kinds(rid) == ["readiness.opened", "readiness.closed"]


async def test_a_team_nobody_can_be_called_for_is_no_answer_and_not_ready(env, db_url):
    with session_scope() as s:
        small_district(s, towns=1, villages=1)
        s.add(RescueTeam(id="T-X", name="无电话队伍", kind="social", strength=5))
    queue = f"rd-{uuid.uuid4().hex[:8]}"
    rid = f"readiness-nophone-{uuid.uuid4().hex[:6]}"
    async with build_worker(env.client, task_queue=queue):
        h = await env.client.start_workflow(ReadinessCheckWorkflow.run, ReadinessInput(settings=duty_settings().readiness),
                                            id=rid, task_queue=queue)
        summary = await h.result()
    assert summary.no_answer == 1 and summary.no_answer_teams == ["T-X"]
    assert kinds(rid) == ["readiness.opened", "readiness.marked_unready", "readiness.closed"]
    assert row(RescueTeam, "T-X").readiness == "unready"


async def test_a_team_never_reads_answered_without_its_answer_in_the_trail_and_the_register(env, db_url, people):
    """A batch's answers were written by `resources.readiness_record` after the `duty.flush` that had already saved
    the view showing them: for that moment the check listed a team ready, not ready or without an answer while the
    trail had no `readiness.answered` / `readiness.no_answer` and the register had not marked it 不能出动. Here every
    commit is a barrier at which the check's teams, the trail and the register are read together."""
    from sqlmodel import select

    from store.audit import AuditEvent
    from store.messages import OutboxMessage
    from tests.helpers import EveryCommit

    queue = f"rd-{uuid.uuid4().hex[:8]}"
    rid = f"readiness-together-{uuid.uuid4().hex[:6]}"
    settings = duty_settings().readiness
    answers_kinds = ("readiness.answered", "readiness.no_answer")

    def look() -> dict:
        with session_scope(write=False) as s:
            states = {a.team_id: a.state for a in s.exec(select(ReadinessAnswer).where(ReadinessAnswer.run_id == rid))}
            trail = {e.payload["team"] for e in s.exec(select(AuditEvent).where(
                AuditEvent.subject == rid, AuditEvent.kind.in_(answers_kinds)))}
            register = {t.id: t.readiness for t in s.exec(select(RescueTeam))}
            called = s.exec(select(OutboxMessage.id).where(OutboxMessage.subject == rid,
                                                           OutboxMessage.provider_id.is_not(None))).all()
        return {"states": states, "trail": trail, "register": register, "called": len(called)}

    def apart(v: dict) -> list[str]:
        """Teams the check shows answered whose answer is not in the trail, or not in the register."""
        return sorted(t for t, st in v["states"].items() if st in ("ready", "not_ready", "no_answer")
                      and (t not in v["trail"] or (st != "ready" and v["register"].get(t) != "unready")))

    async with build_worker(env.client, task_queue=queue):
        try:
            with EveryCommit(look) as watch:
                called = watch.when(lambda v: v["called"] >= 3)
                h = await env.client.start_workflow(ReadinessCheckWorkflow.run,
                                                    ReadinessInput(settings=settings, version="t"), id=rid,
                                                    task_queue=queue)
                await asyncio.wait_for(called.wait(), 60)
                msg = {m.person_id: m for m in outbox(rid) if m.provider_id}
                await answers.gateway_report(env.client, msg[team_person("T-A")].provider_id, "in-progress",
                                             digits="1")
                await answers.gateway_report(env.client, msg[team_person("T-B")].provider_id, "in-progress",
                                             digits="2")
                summary = await h.result()  # T-C: no answer, escalated, then the summary
            assert (summary.ready, summary.not_ready, summary.no_answer) == (1, 1, 1)
            assert not watch.errors
            assert [apart(v) for v in watch.seen if apart(v)] == [], "a team read answered before its answer was recorded"
            assert {a.team_id: a.state for a in rows(ReadinessAnswer, run_id=rid)} == {
                "T-A": "ready", "T-B": "not_ready", "T-C": "no_answer"}
            got = kinds(rid)
            assert got.count("readiness.answered") == 2 and got.count("readiness.no_answer") == 1
            assert got.count("readiness.marked_unready") == 2
            with session_scope(write=False) as s:
                assert verify(s, rid).ok
            await replayer(ReadinessCheckWorkflow).replay_workflow(await h.fetch_history())
        finally:
            await terminate(env.client, [rid])
