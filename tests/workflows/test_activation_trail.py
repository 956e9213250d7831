"""The replay and the report's statistics read the events a real plan activation writes.

PlanActivationWorkflow runs on the time-skipping server with the real activities and database; at chosen
moments the replay of its audit trail (store/replay/) must agree with the workflow's own state — the level
and who set it, every task's and directive's state and time limit, the open limits — and at the end the
statistics of the event report (store/review/) with the workflow's own figures (accepted late by how
much, closed, overdue) and with a count of the events.
"""
from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from temporalio.worker import Worker

from definitions.schema.reporting import Severity
from store.db import session_scope
from store.replay import replay_activation
from store.review import activation_stats
from tests.factories import response_district
from tests.workflows.activation_helpers import activation_input, events, start, subject, terminate_activations
from tests.workflows.callout_helpers import wait_for
from worker import build_worker
from workflows.activation import (
    OPEN,
    DirectiveIn,
    FeedbackIn,
    ItemIn,
    ItemReviewIn,
    LevelIn,
    TerminateIn,
)
from workflows.activation import PlanActivationWorkflow as W


@pytest.fixture
def people(db_url):
    with session_scope() as s:
        return response_district(s)


@pytest.fixture
async def tq(env, db_url, people):
    queue = f"trail-{uuid.uuid4().hex[:8]}"
    w: Worker = build_worker(env.client, task_queue=queue)
    async with w:
        yield queue
        await terminate_activations(env.client)


def as_commander(people, key: str) -> dict:
    return {"actor": people[key], "role": "commander"}


def agrees(view, subj: str) -> dict:
    """Replay the trail at its last event and compare with the workflow's state; the replay is returned."""
    trail = events(subj)
    st = replay_activation(trail, max(e.at for e in trail))
    assert st["level"] == view.level.value and st["status"] == view.status
    assert [(lv["to"], lv["at"], lv["by"]) for lv in st["levels"]] == [(x.level.value, x.at, x.by) for x in view.levels]
    replayed = {i["id"]: i for i in [*st["tasks"], *st["directives"]]}
    mine = {i.id: i for i in [*view.tasks, *view.directives]}
    assert set(replayed) == set(mine)
    for ident, item in mine.items():
        r = replayed[ident]
        assert (r["status"], r["due_at"], r["acknowledged_at"]) == (item.state, item.due_at, item.acknowledged_at), ident
        if item.state == "accepted":
            assert (r["late_by_s"] or 0) == item.late_by_s and r["done_at"] == item.reported_at, ident
    assert {d["key"] for d in st["time_limits"]} == {i.id for i in mine.values() if i.state in OPEN}
    assert {d["key"] for d in st["time_limits"] if d["overdue"]} >= {i.id for i in mine.values()
                                                                     if i.state in OPEN and i.overdue_at}
    return st


async def test_replay_and_statistics_agree_with_the_activation_itself(env, tq, people):
    inp = activation_input(plan_id="flood_control", by=people["D01.head"], role="commander")
    subj = subject(inp)
    h = await start(env.client, tq, inp)
    cmd, rescue, supplies = as_commander(people, "D01.head"), people["D09.head"], people["D02.head"]
    view = await h.query(W.state)
    st = agrees(view, subj)
    assert {t["id"] for t in st["tasks"]} == {"T-consultation", "T-forecast", "T-patrol", "T-evacuate"}

    # a task done and accepted on time; a directive reported, returned, overdue, done again, accepted late
    await h.execute_update(W.acknowledge, ItemIn(actor=rescue, role="commander", item_id="T-patrol"))
    await h.execute_update(W.feedback, FeedbackIn(actor=rescue, role="commander", item_id="T-patrol", kind="done",
                                                  text="险工险段巡查完毕"))
    await h.execute_update(W.review_item, ItemReviewIn(**cmd, item_id="T-patrol", decision="accept"))
    await h.execute_update(W.issue_directive, DirectiveIn(**cmd, title="加密巡查", text="对青溪河左岸加密巡查",
                                                          assignee="group:rescue", due_in="30m"))
    await h.execute_update(W.feedback, FeedbackIn(actor=rescue, role="commander", item_id="D1", kind="done", text="已巡查"))
    await h.execute_update(W.review_item, ItemReviewIn(**cmd, item_id="D1", decision="return", comments="缺巡查照片"))
    agrees(await h.query(W.state), subj)
    await env.sleep(timedelta(minutes=31))
    await wait_for(lambda: events(subj, "activation.directive.overdue"), what="D1 overdue")
    agrees(await h.query(W.state), subj)
    await h.execute_update(W.feedback, FeedbackIn(actor=rescue, role="commander", item_id="D1", kind="done",
                                                  text="补报照片"))
    view = await h.execute_update(W.review_item, ItemReviewIn(**cmd, item_id="D1", decision="accept"))
    assert view.directives[0].late_by_s > 0
    agrees(view, subj)

    # up to Ⅲ级; a task that needs no feedback is done once acknowledged; one left overdue
    view = await h.execute_update(W.change_level, LevelIn(**as_commander(people, "deputy_head"), level=Severity.III,
                                                          reason="青溪河超警戒水位"))
    st = agrees(view, subj)
    assert st["levels"][-1]["from"] == "IV" and st["levels"][-1]["direction"] == "up"
    await h.execute_update(W.acknowledge, ItemIn(actor=supplies, role="commander", item_id="T-stock"))
    await env.sleep(timedelta(hours=2))  # 防汛会商研判 (2 h) is overdue
    await wait_for(lambda: events(subj, "activation.task.overdue"), what="a task overdue")
    agrees(await h.query(W.state), subj)

    view = await h.execute_update(W.terminate, TerminateIn(**as_commander(people, "deputy_head"), reason="水位回落"))
    trail = events(subj)
    st = agrees(view, subj)
    assert st["status"] == "terminated" and st["time_limits"] == []

    # the report's figures: the workflow's own, and a count of the events
    figures = activation_stats(subj, trail)
    assert [(lv["to"], lv["by"]) for lv in figures["levels"]] == [(x.level.value, x.by) for x in view.levels]
    assert [lv["at"] for lv in figures["level_changes"]] == [x.at.isoformat() for x in view.levels[1:]]
    assert figures["terminated_at"] == view.terminated_at.isoformat()
    for name, mine in (("tasks", view.tasks), ("directives", view.directives)):
        rows = {r["id"]: r for r in figures[name]["items"]}
        for item in mine:
            r = rows[item.id]
            if item.state == "accepted":
                assert r["state"] == ("late" if item.late_by_s else "on_time") and (r["late_by_s"] or 0) == item.late_by_s
            elif item.state == "completed":
                assert r["state"] in ("on_time", "late") and r["done_at"] == item.acknowledged_at.isoformat()
            else:
                assert item.state == "closed" and r["state"] == ("overdue" if item.overdue_at else "closed"), item.id
        late = {e.payload["item"]: e.payload["late_by_s"] for e in trail if e.kind == f"activation.{name[:-1]}.late"}
        assert {r["id"]: r["late_by_s"] for r in rows.values() if r["state"] == "late"} == late
        assert figures[name]["overdue"] == len({e.payload["item"] for e in trail
                                                if e.kind == f"activation.{name[:-1]}.overdue"
                                                and rows[e.payload["item"]]["done_at"] is None})
    assert figures["directives"]["late"] == 1 and figures["tasks"]["on_time"] == 2  # T-patrol, T-stock
    assert figures["tasks"]["overdue"] >= 1 and figures["tasks"]["closed"] >= 1
    assert figures["escalations"] == sum(1 for e in trail if e.kind.endswith(".escalated"))
