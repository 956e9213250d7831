"""Plan activation by response level 分级响应 on the time-skipping test server, with the real activities and database."""
from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from temporalio.client import WorkflowExecutionStatus, WorkflowUpdateFailedError
from temporalio.worker import Worker

from definitions.schema.reporting import Severity
from store.audit import verify
from store.db import session_scope
from tests.factories import response_district
from tests.helpers import replayer
from tests.workflows.activation_helpers import (
    ack,
    activation_input,
    events,
    items,
    outbox,
    plan,
    row,
    start,
    subject,
    terminate_activations,
    with_seasons,
)
from tests.workflows.callout_helpers import idle, wait_for
from worker import build_worker
from workflows.activation import (
    ConsultIn,
    DirectiveIn,
    DispatchDecisionIn,
    DispatchIn,
    FeedbackIn,
    ItemIn,
    ItemReviewIn,
    LevelIn,
    PlanActivationWorkflow as W,
    ReinforceAnswerIn,
    ReinforceIn,
    TerminateIn,
)
from workflows.escalation import late_step


@pytest.fixture
def people(db_url):
    with session_scope() as s:
        return response_district(s)


@pytest.fixture
async def tq(env, db_url, people):
    queue = f"act-{uuid.uuid4().hex[:8]}"
    w: Worker = build_worker(env.client, task_queue=queue)
    async with w:
        yield queue
        await terminate_activations(env.client)


def commander(people, key: str) -> dict:
    return {"actor": people[key], "role": "commander"}


async def refused(call, kind: str, words: str) -> None:
    with pytest.raises(WorkflowUpdateFailedError) as exc:
        await call
    assert exc.value.cause.type == kind, exc.value.cause
    assert words in exc.value.cause.message, exc.value.cause.message


# ------------------------------------------------------------------ activation at each level


COMMANDERS = {Severity.IV: "D10.head", Severity.III: "deputy_head", Severity.II: "district_head", Severity.I: "secretary"}


@pytest.mark.parametrize("level", [Severity.IV, Severity.III, Severity.II, Severity.I])
async def test_activation_at_each_level_convenes_its_commanders_groups_and_tasks(env, tq, people, level):
    inp = activation_input(level=level)
    subj, aid = subject(inp), inp.info.activation_id
    h = await start(env.client, tq, inp)
    view = await h.query(W.state)
    lv = plan().level(level)

    assert view.level == level and view.status == "active" and not view.gaps
    [cmd] = [x for x in view.commanders if "指挥长" in x.roles]
    assert cmd.person_id == people[COMMANDERS[level]]
    assert len(view.commanders) == 1 + len(lv.deputies)
    assert {g.id for g in view.groups if g.active} == set(lv.groups)
    # the standing tasks open with the level's limits: 4 h trajectories, 8 h close contacts, 24 h cross-region checks
    due = {t.task_id: t.due_at - view.activated_at for t in view.tasks}
    assert due["trajectory"] == timedelta(hours=4) and due["close_contacts"] == timedelta(hours=8)
    assert due["cross_region"] == timedelta(hours=24)
    assert set(due) == {t.id for t in lv.tasks}
    if level == Severity.II:
        assert due["control_zone"] == timedelta(hours=8) and due["first_release"] == timedelta(hours=12)

    # the commander is woken by a voice call and a text; each group lead and task assignee is called
    msgs = await wait_for(lambda: outbox(subj, people[COMMANDERS[level]]), what="commander called")
    assert {m.channel for m in msgs} >= {"voice", "sms"}
    assert any("您任指挥长" in m.body and "启动" in m.body for m in msgs)
    tracing_lead = people["D10.head"]
    await wait_for(lambda: any("T-trajectory" in m.body and "时限" in m.body for m in outbox(subj, tracing_lead)),
                   what="task notice")

    await ack(env.client, inp, people[COMMANDERS[level]])
    await wait_for(lambda: events(subj, "activation.convene.ack"), what="commander acknowledged")
    view = await h.query(W.state)
    [cmd] = [x for x in view.commanders if "指挥长" in x.roles]
    assert cmd.state == "acknowledged" and cmd.acknowledged_by == people[COMMANDERS[level]]

    kinds = [e.kind for e in events(subj)]
    assert kinds[0] == "activation.started" and "activation.hq.convened" in kinds
    assert kinds.count("activation.task.opened") == len(lv.tasks)
    started = events(subj, "activation.started")[0].payload
    assert started["level"] == level.value and started["plan"] == "public_health"
    assert started["start_condition"] == lv.start_condition_zh
    r = await wait_for(lambda: row(aid), what="read model")
    assert r.level == level.value and r.status == "active" and len(items(aid)) == len(lv.tasks)
    with session_scope(write=False) as s:
        assert verify(s, subj).ok


# ------------------------------------------------------------------ a silent commander


async def test_a_silent_commander_is_escalated_to_the_deputy_then_the_superior(env, tq, people):
    inp = activation_input("work_safety", level=Severity.IV)
    subj = subject(inp)
    h = await start(env.client, tq, inp)
    boss, deputy, superior = people["D01.head"], people["D01.deputy"], people["deputy_head"]
    await wait_for(lambda: outbox(subj, boss), what="commander called")
    assert not outbox(subj, deputy)

    await env.sleep(timedelta(minutes=11))  # voice + sms, 5 min, voice again, 5 min: the deputy
    msgs = await wait_for(lambda: outbox(subj, deputy), what="deputy called")
    assert any("【升级】" in m.body for m in msgs) and {m.channel for m in msgs} == {"voice", "sms"}
    await env.sleep(timedelta(minutes=6))  # the deputy is silent too: the superior
    await wait_for(lambda: outbox(subj, superior), what="superior called")
    # the trail's events are written after the sends (activities/escalation.py): waited for, not read once
    to = await wait_for(lambda: (t := [e.payload["to"] for e in events(subj, "activation.convene.escalated")
                                       if e.payload["target"] == "dept_head@D01"])[1:] and t,
                        what="the second escalation in the trail")
    assert to == ["deputy", "superior"]
    view = await h.query(W.state)
    [cmd] = [x for x in view.commanders if "指挥长" in x.roles]
    assert cmd.state == "escalated" and cmd.escalated

    await ack(env.client, inp, superior)  # the superior answers for the commander's post
    await wait_for(lambda: [e for e in events(subj, "activation.convene.ack") if e.payload["target"] == "dept_head@D01"],
                   what="superior's acknowledgement")
    view = await h.query(W.state)
    [cmd] = [x for x in view.commanders if "指挥长" in x.roles]
    assert cmd.state == "acknowledged" and cmd.acknowledged_by == superior
    # answered before the policy ran out: the duty chief was never told the commander's post is unreachable
    assert not [e for e in events(subj, "activation.convene.informed") if e.payload["target"] == "dept_head@D01"]


# ------------------------------------------------------------------ directives 督办: acknowledge, remind, feed back, return, overdue


async def test_directive_lifecycle_with_return_and_overdue(env, tq, people):
    inp = activation_input(level=Severity.IV)  # public health, Ⅳ级: commander 区卫生健康局局长
    subj, aid = subject(inp), inp.info.activation_id
    h = await start(env.client, tq, inp)
    cmd, lead = commander(people, "D10.head"), people["D08.head"]  # 数据排查组组长: 区公安分局局长

    # who may issue, to whom, by when
    await refused(h.execute_update(W.issue_directive, DirectiveIn(actor=people["duty_cadre"], role="duty_cadre", text="x",
                                                                  assignee="group:data", due_in="2h")),
                  "forbidden", "'duty_cadre' may not issue directives")
    await refused(h.execute_update(W.issue_directive, DirectiveIn(**commander(people, "district_head"), text="x",
                                                                  assignee="group:data", due_in="2h")),
                  "forbidden", "is not Ⅳ级指挥长/副指挥长")
    await refused(h.execute_update(W.issue_directive, DirectiveIn(**cmd, text="x", assignee="group:medical", due_in="2h")),
                  "invalid", "not a working group started at Ⅳ级")
    await refused(h.execute_update(W.issue_directive, DirectiveIn(**cmd, text="x", assignee="group:data")),
                  "invalid", "due_at")
    await refused(h.execute_update(W.issue_directive, DirectiveIn(**cmd, text="x", assignee="X99", due_in="2h")),
                  "invalid", "nobody heads org unit 'X99'")

    view = await h.execute_update(W.issue_directive, DirectiveIn(
        **cmd, title="排查密接人员数据", text="2小时内完成病例同行人员和密接人员数据比对,落地核查名单报指挥长。",
        assignee="group:data", due_in="2h"))
    [d1] = view.directives
    assert d1.id == "D1" and d1.state == "open" and d1.assignee.person.person_id == lead
    assert d1.due_at - d1.issued_at == timedelta(hours=2)
    msgs = await wait_for(lambda: [m for m in outbox(subj, lead) if "【指令D1】" in m.body], what="directive sent")
    assert "数据排查组" in msgs[0].body and "时限" in msgs[0].body

    # the assignee confirms by SMS reply; the directive is acknowledged
    from api.services import answers
    sms = next(m for m in msgs if m.channel == "sms")
    await answers.sms_reply(env.client, "simulator", sms.to, f"收到 {sms.reply_code}", provider_id="t-d1-ack")
    await wait_for(lambda: items(aid)["D1"].acknowledged_at is not None, what="D1 acknowledged")
    assert (await h.query(W.state)).directives[0].state == "acknowledged"
    await refused(h.execute_update(W.acknowledge, ItemIn(actor=lead, role="commander", item_id="D1")), "conflict",
                  "acknowledged already")

    # progress; only the assignee (or the duty office for them) feeds back; nothing to review before 'done'
    await h.execute_update(W.feedback, FeedbackIn(actor=lead, role="commander", item_id="D1", kind="progress",
                                                  text="已比对同行人员42人,正在落地核查"))
    await refused(h.execute_update(W.feedback, FeedbackIn(actor=people["D07.head"], role="commander", item_id="D1",
                                                          kind="done", text="x")), "forbidden", "not the assignee")
    await refused(h.execute_update(W.review_item, ItemReviewIn(**cmd, item_id="D1", decision="accept")), "conflict",
                  "only work reported done")

    # 30 minutes before the limit: a reminder
    await env.sleep(timedelta(minutes=91))
    await wait_for(lambda: events(subj, "activation.item.reminder"), what="reminder")
    assert any("督办提醒" in m.body for m in outbox(subj, lead))

    # done → returned with what is missing (comments required) → the limit passes → overdue → superior called
    await h.execute_update(W.feedback, FeedbackIn(actor=lead, role="commander", item_id="D1", kind="done",
                                                  text="核查完毕,名单已报"))
    await refused(h.execute_update(W.review_item, ItemReviewIn(**cmd, item_id="D1", decision="return")), "invalid",
                  "comments")
    view = await h.execute_update(W.review_item, ItemReviewIn(**cmd, item_id="D1", decision="return",
                                                              comments="缺次密接名单,补充后再报"))
    assert view.directives[0].state == "returned"
    await wait_for(lambda: any("【退回】" in m.body for m in outbox(subj, lead)), what="told it was returned")
    await env.sleep(timedelta(minutes=30))  # past 2 h
    await wait_for(lambda: events(subj, "activation.directive.overdue"), what="overdue")
    await wait_for(lambda: any("【督办】" in m.body for m in outbox(subj, lead)), what="assignee called again")
    await env.sleep(timedelta(minutes=11))
    boss = await wait_for(lambda: [m for m in outbox(subj, people["deputy_head"]) if "督办" in m.body],
                          what="the assignee's superior called")
    assert "【督办升级】" in boss[0].body
    assert items(aid)["D1"].overdue_at is not None

    # done again, late: the overdue calls stop (those woken are told), the commander accepts, the late mark stays
    await h.execute_update(W.feedback, FeedbackIn(actor=lead, role="commander", item_id="D1", kind="done",
                                                  text="次密接名单已补充上报"))
    await wait_for(lambda: events(subj, "activation.overdue.canceled"), what="overdue calls stopped")
    await wait_for(lambda: any("【撤销】" in m.body for m in outbox(subj, people["deputy_head"])), what="superior told")
    view = await h.execute_update(W.review_item, ItemReviewIn(**cmd, item_id="D1", decision="accept"))
    d1 = view.directives[0]
    assert d1.state == "accepted" and 11 * 60 <= d1.late_by_s <= 13 * 60  # 91 + 30 + 11 min against 2 h
    [late] = events(subj, "activation.directive.late")
    assert late.payload["late_by_s"] == d1.late_by_s and late.payload["mark"].startswith("逾期")
    await refused(h.execute_update(W.feedback, FeedbackIn(actor=lead, role="commander", item_id="D1", kind="done",
                                                          text="x")), "conflict", "is done")

    # a directive to an org unit goes to its head; the duty office confirms for them by phone (with a note)
    view = await h.execute_update(W.issue_directive, DirectiveIn(**cmd, text="组织社区开展全员核酸检测", assignee="330110001",
                                                                 due_in="6h"))
    d2 = view.directives[1]
    assert d2.assignee.person.person_id == people["330110001.head"] and d2.unit == "330110001"
    await refused(h.execute_update(W.acknowledge, ItemIn(actor=people["duty_cadre"], role="duty_cadre", item_id="D2")),
                  "invalid", "note")
    view = await h.execute_update(W.acknowledge, ItemIn(actor=people["duty_cadre"], role="duty_cadre", item_id="D2",
                                                        note="电话确认已收到"))
    assert view.directives[1].state == "acknowledged" and view.directives[1].acknowledged_via == "proxy"
    assert "330110001" in view.units

    kinds = [e.kind for e in events(subj) if e.kind.startswith("activation.directive")]
    assert kinds == ["activation.directive.issued", "activation.directive.feedback", "activation.directive.feedback",
                     "activation.directive.returned", "activation.directive.overdue", "activation.directive.feedback",
                     "activation.directive.accepted", "activation.directive.late", "activation.directive.issued"]
    assert items(aid)["D1"].state == "accepted" and items(aid)["D1"].late_by_s == d1.late_by_s
    with session_scope(write=False) as s:
        assert verify(s, subj).ok


# ------------------------------------------------------------------ levels up and down


async def test_an_answer_after_the_directive_call_ended_is_recorded_late_while_the_activation_runs(env, tq, people):
    """Issue 15 #1: the directive's call went on to the deputy, who acknowledged it (that call has ended); the
    assignee answers afterwards while the activation runs. Before: taken by nobody, recorded nowhere."""
    inp = activation_input(level=Severity.IV)
    subj = subject(inp)
    h = await start(env.client, tq, inp)
    cmd, lead, deputy = commander(people, "D10.head"), people["D08.head"], people["D08.deputy"]
    await ack(env.client, inp, lead)  # convened: the group lead answers the call to the headquarters
    await h.execute_update(W.issue_directive, DirectiveIn(**cmd, title="排查密接人员数据", text="2小时内完成数据比对。",
                                                          assignee="group:data", due_in="2h"))
    await wait_for(lambda: [m for m in outbox(subj, lead) if "【指令D1】" in m.body], what="directive sent")
    await env.sleep(timedelta(minutes=26))  # sms+im, 15 min, voice, 10 min: the deputy
    await wait_for(lambda: outbox(subj, deputy), what="deputy called")
    await ack(env.client, inp, deputy, ref="t:deputy")
    await wait_for(lambda: items(inp.info.activation_id)["D1"].acknowledged_at is not None, what="D1 acknowledged")
    await idle(h)  # the directive's call has ended (a barrier); the activation runs on

    answered = await ack(env.client, inp, lead, "voice", ref="t:lead-late")
    assert answered.recorded == "late" and answered.told == 0
    [ev] = await wait_for(lambda: events(subj, "activation.notice.ack.late"), what="late answer recorded")
    assert ev.actor == lead and ev.channel == "voice" and ev.step_id == late_step("-", lead, "t:lead-late")
    p = ev.payload
    assert p["state_at_answer"] == "acknowledged" and p["acknowledged_by"] == deputy and p["episode"] == "notice/D1"
    assert p["recorded_by"] == "workflow" and p["late_by_s"] >= 0
    assert (await h.describe()).status == WorkflowExecutionStatus.RUNNING
    assert (await ack(env.client, inp, lead, "voice", ref="t:lead-late")).recorded == "repeat"
    await idle(h)
    assert len(events(subj, "activation.notice.ack.late")) == 1
    assert (await h.query(W.state)).directives[0].acknowledged_by == deputy
    with session_scope(write=False) as s:
        assert verify(s, subj).ok


async def test_upgrade_then_downgrade(env, tq, people):
    inp = activation_input(level=Severity.IV)
    subj = subject(inp)
    h = await start(env.client, tq, inp)
    await env.sleep(timedelta(minutes=3))  # the Ⅳ级 call-out is still running

    await refused(h.execute_update(W.change_level, LevelIn(**commander(people, "D10.head"), level=Severity.IV, reason="x")),
                  "conflict", "at Ⅳ级 already")
    await refused(h.execute_update(W.change_level, LevelIn(actor=people["duty_cadre"], role="duty_cadre",
                                                           level=Severity.II, reason="x")), "forbidden", "duty_cadre")
    await refused(h.execute_update(W.change_level, LevelIn(actor=people["leading_leader"], role="leading_leader",
                                                           level=Severity.II, reason="x")),
                  "forbidden", "may not raise or set the response to Ⅱ级")
    await refused(h.execute_update(W.change_level, LevelIn(**commander(people, "secretary"), level=Severity.II,
                                                           reason="x")), "forbidden", "is not Ⅳ级指挥长/副指挥长, Ⅱ级")

    # up: the district head takes command; the new groups and tasks start, timed from the change
    view = await h.execute_update(W.change_level, LevelIn(**commander(people, "district_head"), level=Severity.II,
                                                          reason="出现社区传播,疫情升级"))
    assert view.level == Severity.II and [x.level for x in view.levels] == [Severity.IV, Severity.II]
    changed_at = view.levels[-1].at
    assert {g.id for g in view.groups if g.active} == {g.id for g in plan().groups}
    tasks = {t.task_id: t for t in view.tasks}
    assert tasks["control_zone"].due_at - changed_at == timedelta(hours=8)  # Ⅱ级's own limit
    assert tasks["first_release"].due_at - changed_at == timedelta(hours=12)
    assert tasks["trajectory"].due_at - view.activated_at == timedelta(hours=4)  # open ones keep theirs
    msgs = await wait_for(lambda: outbox(subj, people["district_head"]), what="district head called")
    assert any("您任指挥长" in m.body for m in msgs)
    await wait_for(lambda: [e for e in events(subj, "activation.convene.canceled") if e.payload["episode"] == "convene/0"],
                   what="the Ⅳ级 call stops")
    [up] = events(subj, "activation.level.changed")
    assert up.payload == {"from": "IV", "to": "II", "direction": "up", "reason": "出现社区传播,疫情升级"}
    await ack(env.client, inp, people["district_head"])
    await wait_for(lambda: [e for e in events(subj, "activation.convene.ack") if e.payload["episode"] == "convene/1"],
                   what="district head acknowledged")

    # down: the leading leader (Ⅳ级 may be set by the duty office's leader); Ⅱ级-only tasks close, the stood down are told
    view = await h.execute_update(W.change_level, LevelIn(actor=people["leading_leader"], role="leading_leader",
                                                          level=Severity.IV, reason="疫情得到控制"))
    assert view.level == Severity.IV and len(view.levels) == 3
    closed = {t.task_id for t in view.tasks if t.state == "closed"}
    assert closed == {"daily_assessment", "control_zone", "first_release"}
    assert all(t.closed_reason.startswith("响应级别调整为Ⅳ级") for t in view.tasks if t.state == "closed")
    assert {t.task_id for t in view.tasks if t.state != "closed"} == {"trajectory", "close_contacts", "cross_region",
                                                                      "risk_testing"}
    told = await wait_for(lambda: [m for m in outbox(subj, people["district_head"]) if "不再担任" in m.body],
                          what="district head stood down")
    assert "指挥长" in told[0].body
    [standdown] = events(subj, "activation.level.stood_down")
    assert set(standdown.payload["posts"]) == {"district_head", "deputy_district_head", "dept_head@D01", "dept_head@D12",
                                               "town_party_secretary@incident_town"}
    assert len(events(subj, "activation.task.closed")) == 3
    # the calls about the closed tasks stop and those reached are told (e.g. 综合协调组 lead: the daily assessment)
    await wait_for(lambda: any("【撤销】" in m.body and "响应级别调整" in m.body for m in outbox(subj, people["D13.head"])),
                   what="task withdrawn")
    [cmd] = [x for x in view.commanders if "指挥长" in x.roles]
    assert cmd.person_id == people["D10.head"]
    await wait_for(lambda: len([m for m in outbox(subj, people["D10.head"]) if "您任指挥长" in m.body]) >= 2,
                   what="Ⅳ级 commander called again")


# ------------------------------------------------------------------ force dispatch 力量调度


async def test_force_dispatch_in_flood_season_needs_the_sector_department(env, tq, people):
    inp = activation_input("flood_control", level=Severity.III, the_plan=with_seasons(plan("flood_control"), in_flood=True))
    subj = subject(inp)
    h = await start(env.client, tq, inp)
    fire, em, water = people["D09.head"], people["D01.head"], people["D02.head"]  # 消防, 应急管理, 行业主管(水利)

    await refused(h.execute_update(W.draft_dispatch, DispatchIn(actor=water, role="commander", forces=["fire_rescue"],
                                                                task="x")), "forbidden", "drafted by fire rescue")
    await refused(h.execute_update(W.draft_dispatch, DispatchIn(actor=fire, role="commander", forces=["navy"], task="x")),
                  "invalid", "unknown navy")
    view = await h.execute_update(W.draft_dispatch, DispatchIn(
        actor=fire, role="commander", forces=["fire_rescue", "water_team", "blue_sky"], task="第1街道低洼小区被困群众转移",
        place="青溪路低洼小区"))
    [d] = view.dispatches
    assert d.state == "consulting" and d.consult_required and d.season.id == "flood"
    await wait_for(lambda: any("力量调度会商" in m.body and "汛期" in m.body for m in outbox(subj, water)),
                   what="the sector department asked")

    # emergency management may not approve before the sector department agreed
    await refused(h.execute_update(W.decide_dispatch, DispatchDecisionIn(actor=em, role="commander", seq=1,
                                                                         decision="approve")),
                  "conflict", "须由应急管理部门会商行业主管部门")
    await refused(h.execute_update(W.consult_dispatch, ConsultIn(actor=fire, role="commander", seq=1, agree=True,
                                                                 opinion="x")), "forbidden", "neither")
    await refused(h.execute_update(W.consult_dispatch, ConsultIn(actor=em, role="commander", seq=1, agree=True,
                                                                 opinion="同意")), "invalid", "note")
    view = await h.execute_update(W.consult_dispatch, ConsultIn(actor=water, role="commander", seq=1, agree=True,
                                                                opinion="同意,水利抢险队配合"))
    assert view.dispatches[0].state == "drafted"
    await refused(h.execute_update(W.decide_dispatch, DispatchDecisionIn(actor=fire, role="commander", seq=1,
                                                                         decision="approve")), "forbidden", "approved by")
    view = await h.execute_update(W.decide_dispatch, DispatchDecisionIn(actor=em, role="commander", seq=1,
                                                                        decision="approve"))
    assert view.dispatches[0].state == "approved" and view.dispatches[0].sector_informed_at is not None

    # orders to each force, acknowledged; the sector department informed (报备)
    for pid in (fire, water, "force:blue_sky"):
        await wait_for(lambda pid=pid: any("【出动指令】" in m.body for m in outbox(subj, pid)), what=f"order to {pid}")
    assert any("力量调度报备" in m.body for m in outbox(subj, water))
    blue = next(m for m in outbox(subj, "force:blue_sky") if m.channel == "sms")
    from api.services import answers
    await answers.sms_reply(env.client, "simulator", blue.to, "1", provider_id="t-blue")
    await ack(env.client, inp, fire, channel="voice")
    await wait_for(lambda: len(events(subj, "activation.dispatch.order.ack")) >= 2, what="orders acknowledged")
    orders = {o.force: o for o in (await h.query(W.state)).dispatches[0].orders}
    assert orders["blue_sky"].state == "acknowledged" and orders["fire_rescue"].state == "acknowledged"
    await h.execute_update(W.terminate, TerminateIn(**commander(people, "deputy_head"), reason="险情解除"))
    await replayer(W).replay_workflow(await h.fetch_history())
    kinds = [e.kind for e in events(subj, "activation.dispatch") if not e.kind.startswith("activation.dispatch.order")]
    assert kinds == ["activation.dispatch.drafted", "activation.dispatch.consult_requested",
                     "activation.dispatch.approval_requested", "activation.dispatch.consulted",
                     "activation.dispatch.approved", "activation.dispatch.sector_informed"]


async def test_force_dispatch_out_of_season_is_approved_directly_and_a_returned_plan_is_redrafted(env, tq, people):
    inp = activation_input("flood_control", level=Severity.IV, the_plan=with_seasons(plan("flood_control"), in_flood=False))
    subj = subject(inp)
    h = await start(env.client, tq, inp)
    fire, em, water = people["D09.head"], people["D01.head"], people["D02.head"]

    view = await h.execute_update(W.draft_dispatch, DispatchIn(actor=fire, role="commander", forces=["fire_rescue"],
                                                               task="排水抢险"))
    assert view.dispatches[0].state == "drafted" and not view.dispatches[0].consult_required
    await refused(h.execute_update(W.consult_dispatch, ConsultIn(actor=water, role="commander", seq=1, agree=True,
                                                                 opinion="同意")), "conflict", "does not await consultation")
    await refused(h.execute_update(W.draft_dispatch, DispatchIn(actor=fire, role="commander", forces=["police"],
                                                                task="x")), "conflict", "awaits approval")
    view = await h.execute_update(W.decide_dispatch, DispatchDecisionIn(actor=em, role="commander", seq=1,
                                                                        decision="return", comments="增加公安力量维持秩序"))
    assert view.dispatches[0].state == "returned"
    view = await h.execute_update(W.draft_dispatch, DispatchIn(actor=fire, role="commander", forces=["fire_rescue", "police"],
                                                               task="排水抢险,维持秩序"))
    d = view.dispatches[0]
    assert len(view.dispatches) == 1 and d.version == 2 and d.state == "drafted"
    view = await h.execute_update(W.decide_dispatch, DispatchDecisionIn(actor=em, role="commander", seq=1,
                                                                        decision="approve"))
    assert view.dispatches[0].state == "approved"
    await wait_for(lambda: any("【出动指令】" in m.body for m in outbox(subj, people["D08.head"])), what="police ordered")
    await wait_for(lambda: any("力量调度报备" in m.body for m in outbox(subj, water)), what="sector informed")
    assert not any("会商" in m.body for m in outbox(subj, water))
    assert not events(subj, "activation.dispatch.consult")


# ------------------------------------------------------------------ reinforcement from the city


async def test_the_reinforcement_request_names_the_district_the_directory_names(env, tq, people):
    from store.directory import OrgUnit
    with session_scope() as s:
        s.get(OrgUnit, "330110").name = "云溪区"
    inp = activation_input("geological_hazard", level=Severity.III)
    h = await start(env.client, tq, inp)
    await h.execute_update(W.request_reinforcement, ReinforceIn(
        **commander(people, "deputy_head"), kind="experts", detail="地质灾害专家2名", quantity="2名"))
    msg = (await wait_for(lambda: outbox(subject(inp), "city:reinforcement"), what="request sent"))[0]
    assert msg.body.startswith("【增援请求】云溪区青溪区突发地质灾害应急预案Ⅲ级响应"), msg.body


async def test_reinforcement_request_is_chased_when_unanswered_and_answered_late(env, tq, people):
    inp = activation_input("geological_hazard", level=Severity.III)
    subj = subject(inp)
    h = await start(env.client, tq, inp)
    await refused(h.execute_update(W.request_reinforcement, ReinforceIn(actor=people["duty_cadre"], role="duty_cadre",
                                                                        kind="experts", detail="x")),
                  "forbidden", "may not request reinforcement")
    view = await h.execute_update(W.request_reinforcement, ReinforceIn(
        **commander(people, "deputy_head"), kind="experts", detail="地质灾害专家2名,研判二次滑坡风险", quantity="2名"))
    [r] = view.reinforcements
    assert r.due_at - r.requested_at == timedelta(hours=2)
    msg = (await wait_for(lambda: outbox(subj, "city:reinforcement"), what="request sent"))[0]
    assert "【增援请求】" in msg.body and "地质灾害专家2名" in msg.body
    assert msg.body.startswith("【增援请求】青溪区突发地质灾害") and "青溪区青溪区" not in msg.body  # the directory's name, once
    await ack(env.client, inp, "city:reinforcement")  # the city confirms receipt, but does not answer
    await wait_for(lambda: events(subj, "activation.reinforcement.request.ack"), what="receipt")

    await env.sleep(timedelta(hours=2, minutes=1))
    await wait_for(lambda: events(subj, "activation.reinforcement.overdue"), what="overdue")
    chase = await wait_for(lambda: [m for m in outbox(subj, people["duty_chief"]) if "【催办】" in m.body], what="chased")
    assert "市应急管理局" in chase[0].body
    view = await h.execute_update(W.answer_reinforcement, ReinforceAnswerIn(
        actor=people["duty_chief"], role="duty_chief", seq=1, decision="granted", detail="市局派2名专家,预计1小时到达",
        by_whom="市应急管理局 值班员"))
    r = view.reinforcements[0]
    assert r.state == "answered" and r.received_at is not None and 60 <= r.late_by_s <= 120
    await wait_for(lambda: events(subj, "activation.reinforcement.chase.canceled"), what="chase stopped")
    await refused(h.execute_update(W.answer_reinforcement, ReinforceAnswerIn(
        actor=people["duty_chief"], role="duty_chief", seq=1, decision="refused", detail="x", by_whom="x")),
        "conflict", "answered already")


# ------------------------------------------------------------------ termination and the post-event review


async def test_termination_closes_everything_and_starts_the_review(env, tq, people):
    inp = activation_input("work_safety", level=Severity.IV)
    subj, iid = subject(inp), inp.info.incident_id
    h = await start(env.client, tq, inp)
    # a second plan for the same incident: its termination finds the review started already
    inp2 = activation_input("flood_control", level=Severity.IV)
    inp2 = inp2.model_copy(update={"info": inp2.info.model_copy(update={
        "incident_id": iid, "activation_id": f"{iid}-flood_control"})})
    h2 = await start(env.client, tq, inp2)
    cmd = commander(people, "D01.head")  # Ⅳ级 commander of both plans: 区应急管理局局长
    await h.execute_update(W.issue_directive, DirectiveIn(**cmd, text="排查周边工地隐患", assignee="group:rescue", due_in="3h"))
    await h.execute_update(W.draft_dispatch, DispatchIn(actor=people["D09.head"], role="commander", forces=["fire_rescue"],
                                                        task="搜救"))

    await refused(h.execute_update(W.terminate, TerminateIn(actor=people["duty_cadre"], role="duty_cadre", reason="x")),
                  "forbidden", "may not terminate a Ⅳ级 response")
    await refused(h.execute_update(W.terminate, TerminateIn(**commander(people, "district_head"), reason="x")),
                  "forbidden", "not Ⅳ级指挥长")
    view = await h.execute_update(W.terminate, TerminateIn(**cmd, reason="被困人员全部救出,现场处置完毕"))
    assert view.status == "terminated" and view.terminated_by == people["D01.head"]
    assert all(i.state in ("closed", "completed", "accepted") for i in [*view.tasks, *view.directives])
    assert view.directives[0].closed_reason == "响应终止" and view.dispatches[0].state == "closed"
    assert view.review_workflow_id == f"review-{iid}"
    result = await h.result()
    assert result.status == "terminated"
    await replayer(W).replay_workflow(await h.fetch_history())

    # the review runs as a child left running (no worker runs its type in this test)
    desc = await env.client.get_workflow_handle(f"review-{iid}").describe()
    assert desc.workflow_type == "PostEventReviewWorkflow" and desc.status == WorkflowExecutionStatus.RUNNING
    [started] = events(subj, "activation.review.started")
    assert started.payload["activation_id"] == view.workflow_id and started.payload["incident_id"] == iid
    assert started.payload["started_by"] == people["D01.head"] and "D09" in started.payload["units"]
    told = await wait_for(lambda: [m for m in outbox(subj, people["D09.head"]) if "【响应终止】" in m.body], what="told")
    assert "书面总结" in told[0].body
    kinds = [e.kind for e in events(subj)]
    assert kinds.index("activation.terminated") < kinds.index("activation.review.started")
    assert "activation.directive.closed" in kinds
    assert row(inp.info.activation_id).status == "terminated"

    await h2.execute_update(W.terminate, TerminateIn(**cmd, reason="同一事件,一并终止"))
    assert events(subject(inp2), "activation.review.already_started")
    from temporalio.service import RPCError
    with pytest.raises((RPCError, WorkflowUpdateFailedError)):  # nothing more once it ended
        await h.execute_update(W.issue_directive, DirectiveIn(**cmd, text="x", assignee="group:rescue", due_in="1h"))
    with session_scope(write=False) as s:
        assert verify(s, subj).ok


# ------------------------------------------------------------------ continue-as-new in the middle


async def test_continue_as_new_in_the_middle_of_an_activation_loses_nothing(env, tq, people):
    inp = activation_input(level=Severity.IV, max_history=150)
    subj, aid = subject(inp), inp.info.activation_id
    h = await start(env.client, tq, inp)
    cmd, lead = commander(people, "D10.head"), people["D08.head"]
    await h.execute_update(W.issue_directive, DirectiveIn(**cmd, text="比对密接数据", assignee="group:data", due_in="3h"))
    await h.execute_update(W.draft_dispatch, DispatchIn(actor=people["D09.head"], role="commander", forces=["medical"],
                                                        task="转运"))
    # The history passes 150 events as the convening calls escalate; how many events a minute
    # makes depends on how the activities' completions batch, so step until the workflow continues.
    for _ in range(30):
        await env.sleep(timedelta(minutes=1))
        if events(subj, "activation.continued"):
            break
    await wait_for(lambda: events(subj, "activation.continued"), timeout=60, what="continued as new")

    # answers, updates and timers all reach the continued run
    await ack(env.client, inp, people["D10.head"])
    await wait_for(lambda: any(e.payload.get("person_id") == people["D10.head"] for e in events(subj, "activation.convene.ack")),
                   timeout=60, what="ack after continue-as-new")
    await h.execute_update(W.feedback, FeedbackIn(actor=lead, role="commander", item_id="D1", kind="done", text="完成"))
    view = await h.execute_update(W.review_item, ItemReviewIn(**cmd, item_id="D1", decision="accept"))
    assert view.directives[0].state == "accepted" and view.directives[0].late_by_s == 0
    assert view.dispatches[0].state in ("consulting", "drafted")
    await env.sleep(timedelta(hours=4))  # the 4 h trajectory task, never fed back: overdue in a later run
    await wait_for(lambda: [e for e in events(subj, "activation.task.overdue") if e.payload["item"] == "T-trajectory"],
                   timeout=60, what="task overdue after continue-as-new")
    view = await h.query(W.state)
    assert view.runs >= 2 and len(view.tasks) == 4 and [d.id for d in view.directives] == ["D1"]
    [cmd_seat] = [x for x in view.commanders if "指挥长" in x.roles]
    assert cmd_seat.state == "acknowledged"
    await h.execute_update(W.terminate, TerminateIn(**cmd, reason="演练结束"))
    await h.result()

    history_replayer = replayer(W)
    run_id: str | None = h.result_run_id
    replayed = 0
    while run_id:  # every run replays, the continued ones included
        history = await env.client.get_workflow_handle(h.id, run_id=run_id).fetch_history()
        await history_replayer.replay_workflow(history)
        replayed += 1
        last = history.events[-1]
        run_id = (last.workflow_execution_continued_as_new_event_attributes.new_execution_run_id
                  if last.HasField("workflow_execution_continued_as_new_event_attributes") else None)
    assert replayed == view.runs >= 2
    with session_scope(write=False) as s:
        assert verify(s, subj).ok
    assert items(aid)["D1"].state == "accepted"


# ------------------------------------------------------------------ wording from the plan


async def test_the_plan_words_what_the_activation_sends(env, tq, people):
    """The workflow holds no wording: a plan that rewords its messages (definitions/plans/, `messages`) is heard so."""
    p = plan("geological_hazard")
    says = p.messages.model_copy(update={
        "convene": "【到岗】{title}:{plan}{level},请以{roles}身份到岗。",
        "request": "【请求支援】{plan}{level}响应:需{kind}({detail}{quantity}),{due}前请回复。"})
    inp = activation_input("geological_hazard", level=Severity.III, the_plan=p.model_copy(update={"messages": says}))
    subj = subject(inp)
    h = await start(env.client, tq, inp)
    msgs = await wait_for(lambda: outbox(subj, people["deputy_head"]), what="commander called")
    assert any(m.body.startswith(f"【到岗】{inp.info.incident_title}:{p.name_zh}") and "请以指挥长身份到岗" in m.body
               for m in msgs), [m.body for m in msgs]  # {roles}: filled by the sending activity
    await h.execute_update(W.request_reinforcement, ReinforceIn(**commander(people, "deputy_head"), kind="experts",
                                                                detail="地质灾害专家", quantity="2名"))
    msg = (await wait_for(lambda: outbox(subj, "city:reinforcement"), what="request sent"))[0]
    assert msg.body.startswith(f"【请求支援】{p.name_zh}Ⅲ级响应:需专家(地质灾害专家(2名)),"), msg.body
    assert "{due}" not in msg.body and "前请回复" in msg.body
