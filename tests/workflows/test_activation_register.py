"""Force dispatch from the resource register 应急资源 on the time-skipping test server, with the real activities and
database: the proposal (available teams of the plan's kinds, the incident's town first, their strength), a draft
naming register teams marks them busy (recorded), a second draft naming a busy team is refused, a returned plan and
the response's end release them; the history replays."""
from __future__ import annotations

import uuid

import pytest
from temporalio.worker import Worker

from api.services.resources import proposal
from definitions.schema.reporting import Severity
from store.audit import verify
from store.db import session_scope
from store.resources import RescueTeam
from tests.factories import response_district
from tests.helpers import replayer
from tests.workflows.activation_helpers import (activation_input, events, outbox, plan, start, subject,
                                                terminate_activations, with_seasons)
from tests.workflows.callout_helpers import wait_for
from tests.workflows.test_activation import refused
from worker import build_worker
from workflows.activation import DispatchDecisionIn, DispatchIn, PlanActivationWorkflow as W, TerminateIn


@pytest.fixture
def people(db_url):
    with session_scope() as s:
        people = response_district(s)
        s.add_all([
            RescueTeam(id="T-FL-1", name="水利防汛抢险队", kind="flood", strength=40, town_id="330110002",
                       duty_phone="+8657186900202"),
            RescueTeam(id="T-FL-2", name="第1街道抢险突击队", kind="flood", strength=25, town_id="330110001",
                       leader_id=people["D02.deputy"]),  # no duty phone: its leader takes the order
            RescueTeam(id="T-MI-1", name="第1街道民兵应急分队", kind="militia", strength=30, town_id="330110001",
                       duty_phone="+8657186910001"),
            RescueTeam(id="T-MI-2", name="第2街道民兵应急分队", kind="militia", strength=20, town_id="330110002",
                       duty_phone="+8657186910002", readiness="unready"),
            RescueTeam(id="T-ME-1", name="急救中心救护队", kind="medical", strength=16, duty_phone="+8657186900120"),
        ])
        return people


@pytest.fixture
async def tq(env, db_url, people):
    queue = f"reg-{uuid.uuid4().hex[:8]}"
    w: Worker = build_worker(env.client, task_queue=queue)
    async with w:
        yield queue
        await terminate_activations(env.client)


def team(tid: str) -> RescueTeam:
    with session_scope(write=False) as s:
        return s.get(RescueTeam, tid)


async def test_dispatch_from_the_register_marks_busy_refuses_a_busy_team_and_releases(env, tq, people):
    inp = activation_input("flood_control", level=Severity.IV, town="330110001",
                           the_plan=with_seasons(plan("flood_control"), in_flood=False))
    subj = subject(inp)
    h = await start(env.client, tq, inp)
    fire, em = people["D09.head"], people["D01.head"]
    view = await h.query(W.state)
    assert view.team_kinds == ["flood", "fire_rescue", "militia", "social"] and view.town_id == "330110001"

    # the proposal: the plan's kinds, available and ready first, the incident's town first, then the strongest
    with session_scope(write=False) as s:
        found = proposal(s, view.team_kinds, view.town_id)
    assert [(t["id"], t["proposed"]) for t in found["teams"]] == [
        ("T-FL-2", True), ("T-MI-1", True), ("T-FL-1", True), ("T-MI-2", False)]  # no medical team: not a kind asked
    assert found["available_strength"] == {"flood": 65, "fire_rescue": 0, "militia": 30, "social": 0}

    await refused(h.execute_update(W.draft_dispatch, DispatchIn(actor=fire, role="commander", task="x")),
                  "invalid", "name at least one force or register team")
    await refused(h.execute_update(W.draft_dispatch, DispatchIn(actor=fire, role="commander", teams=["T-NONE"], task="x")),
                  "not_found", "T-NONE")
    await refused(h.execute_update(W.draft_dispatch, DispatchIn(actor=fire, role="commander", teams=["T-MI-2"], task="x")),
                  "conflict", "not ready")
    assert team("T-MI-2").status == "available"

    view = await h.execute_update(W.draft_dispatch, DispatchIn(
        actor=fire, role="commander", forces=["fire_rescue"], teams=["T-FL-2", "T-MI-1"], task="低洼小区群众转移"))
    [d] = view.dispatches
    assert [(t.id, t.strength, t.mobile) for t in d.teams] == [
        ("T-FL-2", 25, d.teams[0].mobile), ("T-MI-1", 30, "+8657186910001")]
    assert d.teams[0].mobile and d.teams[0].mobile.startswith("+86")  # the leader's mobile
    holder = f"{h.id}/dispatch/1/v1"
    assert (team("T-FL-2").status, team("T-FL-2").busy_with) == ("busy", holder)
    assert team("T-MI-1").status == "busy" and team("T-FL-1").status == "available"
    busy = events(subj, "activation.dispatch.team_busy")
    assert [(e.payload["team"], e.payload["strength"], e.actor) for e in busy] == [("T-FL-2", 25, fire), ("T-MI-1", 30, fire)]

    # returned: the teams are free again; the redraft names one of them and another, marked anew
    await h.execute_update(W.decide_dispatch, DispatchDecisionIn(actor=em, role="commander", seq=1, decision="return",
                                                                 comments="民兵分队另有任务"))
    assert team("T-MI-1").status == "available" and team("T-FL-2").status == "available"
    view = await h.execute_update(W.draft_dispatch, DispatchIn(actor=fire, role="commander", teams=["T-FL-2", "T-FL-1"],
                                                               task="低洼小区群众转移"))
    assert [t.id for t in view.dispatches[0].teams] == ["T-FL-2", "T-FL-1"] and view.dispatches[0].version == 2
    assert team("T-FL-1").busy_with == f"{h.id}/dispatch/1/v2"
    await h.execute_update(W.decide_dispatch, DispatchDecisionIn(actor=em, role="commander", seq=1, decision="approve"))
    await wait_for(lambda: any("【出动指令】" in m.body for m in outbox(subj, "team:T-FL-1")), what="order to the team")
    await wait_for(lambda: any("【出动指令】" in m.body for m in outbox(subj, "team:T-FL-2")), what="order to the leader")
    assert {m.to for m in outbox(subj, "team:T-FL-1")} == {"+8657186900202"}

    # a second dispatch of a busy team is refused: another plan of this activation, or another activation
    await refused(h.execute_update(W.draft_dispatch, DispatchIn(actor=fire, role="commander", teams=["T-FL-1"],
                                                                task="再次调度")), "conflict", "T-FL-1")
    other = activation_input("flood_control", level=Severity.IV, town="330110002",
                             the_plan=with_seasons(plan("flood_control"), in_flood=False))
    h2 = await start(env.client, tq, other)
    await refused(h2.execute_update(W.draft_dispatch, DispatchIn(actor=fire, role="commander", teams=["T-MI-1", "T-FL-2"],
                                                                 task="另一事件")), "conflict", "队伍已出动")
    assert team("T-MI-1").status == "available"  # all or nothing: the free team was not marked either
    assert not events(subject(other), "activation.dispatch.team_busy")

    # the response ends: its teams are released (归建), each recorded
    await h.execute_update(W.terminate, TerminateIn(actor=em, role="commander", reason="险情解除"))  # Ⅳ级: 应急管理局长
    await wait_for(lambda: team("T-FL-1").status == "available", what="teams released")
    assert team("T-FL-2").status == "available" and team("T-FL-2").busy_with is None
    released = events(subj, "activation.dispatch.team_released")
    assert [(e.payload["team"], e.payload["reason"]) for e in released] == [
        ("T-FL-2", "调度方案退回"), ("T-MI-1", "调度方案退回"), ("T-FL-1", "应急响应终止"), ("T-FL-2", "应急响应终止")]
    with session_scope(write=False) as s:
        assert verify(s, subj).ok
        from store.replay import load_events
        from store.review.activation_stats import activation_stats
        used = activation_stats(subj, load_events(s, subj))["resources"]  # the event report's 应急资源
    assert [(t["team"], t["strength"], t["released_at"] is not None) for t in used["teams"]] == [
        ("T-FL-2", 25, True), ("T-MI-1", 30, True), ("T-FL-1", 40, True)]
    assert used["strength"] == 95
    await replayer(W).replay_workflow(await h.fetch_history())
    # the other activation may now take the released team
    view = await h2.execute_update(W.draft_dispatch, DispatchIn(actor=fire, role="commander", teams=["T-FL-1"], task="另一事件"))
    assert team("T-FL-1").busy_with == f"{h2.id}/dispatch/1/v1"
