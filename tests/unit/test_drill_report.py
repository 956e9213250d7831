"""A drill run reads "reported" only once its report has gone out and its trail holds `drill.reported`.

The report activity used to mark the run reported, then send the report, then write the trail: the
console (and the e2e test's poll) could see a reported drill whose trail ended at `drill.started`.
Here the simulator holds the report's first SMS: while it is held the run is not reported and the
trail has no report; once it goes through, the run, its figures and the trail say so together.
"""
from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from temporalio.testing import ActivityEnvironment

from activities.duty.drill import drill_prepare, drill_report
from activities.gateways.simulator import SimulatorGateway
from store.db import session_scope
from store.duty import DrillRun
from tests.factories import small_district
from tests.workflows.duty_helpers import duty_settings, kinds, outbox
from workflows.drill import PrepareRequest, ReportRequest

RUN = "drill-district_connectivity-manual-test"


def hold_sends(monkeypatch) -> tuple[asyncio.Event, asyncio.Event]:
    """The simulator's sends wait for `release`; `held` is set when the first one does."""
    held, release = asyncio.Event(), asyncio.Event()
    send = SimulatorGateway.send

    async def held_send(self, msg):
        held.set()
        await release.wait()
        return await send(self, msg)

    monkeypatch.setattr(SimulatorGateway, "send", held_send)
    return held, release


def _status(run: str = RUN) -> str:
    with session_scope(write=False) as s:
        return s.get(DrillRun, run).status


async def test_the_run_is_reported_with_its_report_sent_and_on_its_trail(db_url, monkeypatch):
    with session_scope() as s:
        people = small_district(s)
    drill = duty_settings().drills.get("district_connectivity")
    env = ActivityEnvironment()
    prepared = await env.run(drill_prepare, PrepareRequest(run_id=RUN, temporal_run_id="r1", drill=drill, version="v1",
                                                           trigger="manual:test", at=datetime.now(UTC)))
    assert prepared.callout is not None and _status() != "reported"

    held, release = hold_sends(monkeypatch)
    report = asyncio.create_task(env.run(drill_report, ReportRequest(
        run_id=RUN, temporal_run_id="r1", callout_id=prepared.callout.callout_id, drill=drill)))
    await asyncio.wait_for(held.wait(), 30)
    assert _status() != "reported", "the run read reported while its report was still being sent"
    assert kinds(RUN) == ["drill.started"]

    release.set()
    result = await asyncio.wait_for(report, 30)
    assert result.total == 0 and _status() == "reported"
    assert kinds(RUN) == ["drill.started", "drill.reported"]
    assert {m.person_id for m in outbox(RUN)} == {people["leading_leader"], people["duty_chief"]}


async def test_a_run_that_found_nobody_is_reported_only_with_its_report_sent_and_on_its_trail(db_url, monkeypatch):
    """A sample that finds no unit to draw from: no call-out, but the report still goes out. The run used to read
    "reported" from its prepare step on, while its trail ended at `drill.started` until the report was sent."""
    with session_scope() as s:
        people = small_district(s)
    drill = duty_settings().drills.get("district_connectivity")
    drill = drill.model_copy(update={"sample": drill.sample.model_copy(update={"org_units": ["no-such-unit"]})})
    run = f"{RUN}-gap"
    env = ActivityEnvironment()
    prepared = await env.run(drill_prepare, PrepareRequest(run_id=run, temporal_run_id="r1", drill=drill, version="v1",
                                                           trigger="manual:test", at=datetime.now(UTC)))
    assert prepared.callout is None and prepared.gap
    assert kinds(run) == ["drill.started"]
    assert _status(run) != "reported", "the run read reported before its report was sent or on its trail"

    held, release = hold_sends(monkeypatch)
    report = asyncio.create_task(env.run(drill_report, ReportRequest(
        run_id=run, temporal_run_id="r1", callout_id=f"{run}/callout", drill=drill, gap=prepared.gap)))
    await asyncio.wait_for(held.wait(), 30)
    assert _status(run) != "reported", "the run read reported while its report was still being sent"
    assert kinds(run) == ["drill.started"]

    release.set()
    result = await asyncio.wait_for(report, 30)
    assert result.total == 0 and _status(run) == "reported"
    assert kinds(run) == ["drill.started", "drill.reported"]
    with session_scope(write=False) as s:
        row = s.get(DrillRun, run)
        assert row.ended_at is not None and row.report["gap"] == prepared.gap
    assert {m.person_id for m in outbox(run)} == {people["leading_leader"], people["duty_chief"]}
