"""Plan activation by response level 分级响应 on the time-skipping test server, with the real activities and database."""
from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from temporalio.client import WorkflowExecutionStatus, WorkflowUpdateFailedError
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer, Worker

from definitions.schema.reporting import Severity
from store.audit import verify
from store.db import session_scope
from tests.factories import response_district
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
from tests.workflows.callout_helpers import wait_for
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


@pytest.fixture
async def env():
    """A time-skipping server of each test's own: these tests move its clock by hours."""
    from temporalio.testing import WorkflowEnvironment

    from tests.conftest import temporal_test_server

    e = await WorkflowEnvironment.start_time_skipping(test_server_existing_path=temporal_test_server(),
                                                      data_converter=pydantic_data_converter)
    yield e
    await e.shutdown()


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
    esc = events(subj, "activation.convene.escalated")
    assert [e.payload["to"] for e in esc if e.payload["target"] == "dept_head@D01"] == ["deputy", "superior"]
    view = await h.query(W.state)
    [cmd] = [x for x in view.commanders if "指挥长" in x.roles]
    assert cmd.state == "escalated" and cmd.escalated

    await ack(env.client, inp, superior)  # the superior answers for the commander's post
    await wait_for(lambda: [e for e in events(subj, "activation.convene.ack") if e.payload["target"] == "dept_head@D01"],
                   what="superior's acknowledgement")
    view = await h.query(W.state)
    [cmd] = [x for x in view.commanders if "指挥长" in x.roles]
    assert cmd.state == "acknowledged" and cmd.acknowledged_by == superior
    # nobody else in the convene was ever told the commander was silent
    assert not events(subj, "activation.convene.informed") or all(
        e.payload["target"] != "dept_head@D01" for e in events(subj, "activation.convene.informed"))
