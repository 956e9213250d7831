"""事发时间 / 知悉时间 / the reporting unit's report time: a town's 迟报 to the duty office, measured against the
reporting rules' `unit_report_within` (30 min from 知悉 in the district), marked in the trail and counted per unit."""
from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from temporalio.worker import Worker

from store.db import session_scope
from store.incidents import unit_report_statistics
from tests.factories import small_district
from tests.workflows.callout_helpers import wait_for
from tests.workflows.reporting_helpers import events, incident, incident_input, start, terminate_incidents
from worker import build_worker
from workflows.reporting import IncidentReportingWorkflow as W

TOWN = "330110001"


@pytest.fixture
async def tq(env, db_url):
    with session_scope() as s:
        small_district(s)
    queue = f"unit-{uuid.uuid4().hex[:8]}"
    w: Worker = build_worker(env.client, task_queue=queue)
    async with w:
        yield queue
        await terminate_incidents(env.client)


def timed(received, known_before: timedelta, reported_at=None):
    inp = incident_input(received_at=received, reporting_unit_id=TOWN)
    inp.incident.reporting_unit = "第1街道"
    inp.incident.occurred_at = received - known_before - timedelta(minutes=5)
    inp.incident.known_at = received - known_before
    inp.incident.reported_at = reported_at
    return inp


async def test_a_town_reporting_late_is_measured_marked_and_counted(env, tq):
    now = await env.get_current_time()
    late = timed(now, timedelta(minutes=50))  # knew 50 min before it reported: 20 min past the 30 min limit
    on_time = timed(now, timedelta(minutes=40), reported_at=now - timedelta(minutes=15))  # reported 25 min after
    h = await start(env.client, tq, late)
    await start(env.client, tq, on_time)
    li, oi = late.incident.incident_id, on_time.incident.incident_id

    view = await h.query(W.state)
    assert view.unit_report is not None and view.unit_report.late_by_s == 20 * 60
    assert view.unit_report.due_at == late.incident.known_at + timedelta(minutes=30)
    assert view.unit_report.reported_at == now  # default: the 接报 time
    [mark] = await wait_for(lambda: events(li, "report.unit.late"), what="the unit's late mark")
    assert mark.payload["late_by_min"] == 20 and mark.payload["mark"] == "迟报20分钟"
    assert mark.payload["unit_id"] == TOWN and mark.payload["met_at"] == now.isoformat()
    [received] = events(li, "incident.received")
    assert received.payload["unit_report"]["late_by_s"] == 20 * 60

    await wait_for(lambda: incident(oi) and incident(oi).unit_due_at is not None, what="the on-time row")
    assert incident(li).unit_late_by_s == 20 * 60 and incident(li).known_at == late.incident.known_at
    row = incident(oi)
    assert row.unit_late_by_s == 0 and row.reported_at == on_time.incident.reported_at
    assert not events(oi, "report.unit.late")

    with session_scope(write=False) as s:
        stats = unit_report_statistics(s, unit_ids=[TOWN])
    st = stats[TOWN]
    assert (st.reported, st.on_time, st.late) == (2, 1, 1) and st.late_by_s == {li: 20 * 60}
    with session_scope(write=False) as s:  # received after both: none
        assert unit_report_statistics(s, since=now + timedelta(seconds=1)) == {}


async def test_without_known_at_nothing_is_measured(env, tq):
    now = await env.get_current_time()
    inp = incident_input(received_at=now, reporting_unit_id=TOWN)
    h = await start(env.client, tq, inp)
    assert (await h.query(W.state)).unit_report is None
    await wait_for(lambda: incident(inp.incident.incident_id), what="the row")
    assert incident(inp.incident.incident_id).unit_due_at is None
    assert not events(inp.incident.incident_id, "report.unit.late")


async def test_lateral_report_to_the_city_department_before_the_district_is_flagged(env, tq):
    """拉条: 区气象局 reported to 市气象局 40 min before the district got it (limit 10 min): report.vertical.gap."""
    from temporalio.client import WorkflowUpdateFailedError

    from workflows.reporting import VerticalIn

    now = await env.get_current_time()
    inp = incident_input(received_at=now, reporting_unit_id="D04", category="natural_disaster", subtype="雷击")
    iid = inp.incident.incident_id
    h = await start(env.client, tq, inp)
    who = {"actor": "p-duty_cadre", "role": "duty_cadre"}
    view = await h.execute_update(W.vertical, VerticalIn(**who, to_whom="市气象局值班室", at=now - timedelta(minutes=40)))
    assert view.vertical is not None and view.vertical.gap_s == 40 * 60 and view.vertical.district_at == now
    [gap] = await wait_for(lambda: events(iid, "report.vertical.gap"), what="the gap flagged")
    assert gap.payload["late_by_min"] == 40 and gap.payload["to_whom"] == "市气象局值班室"
    await wait_for(lambda: incident(iid).vertical, what="the row")
    assert incident(iid).vertical["gap_s"] == 40 * 60
    with pytest.raises(WorkflowUpdateFailedError) as exc:  # once
        await h.execute_update(W.vertical, VerticalIn(**who, to_whom="x", at=now))
    assert "recorded already" in exc.value.cause.message

    in_step = incident_input(received_at=now, reporting_unit_id="D04", category="natural_disaster", subtype="雷击")
    h2 = await start(env.client, tq, in_step)
    view = await h2.execute_update(W.vertical, VerticalIn(**who, to_whom="市气象局值班室", at=now - timedelta(minutes=5)))
    assert view.vertical.gap_s == 5 * 60  # within the 10 min: recorded, not flagged
    await wait_for(lambda: events(in_step.incident.incident_id, "report.vertical.made"), what="recorded")
    assert not events(in_step.incident.incident_id, "report.vertical.gap")
