"""Drills 演练 as Temporal Schedules (seed 000 任务 17: ≥2 district drills, ≥3 town spot checks a week).

Each run draws a random sample of org units from the drill's scope and calls their
posts through the call-out machinery itself (`WarningCalloutWorkflow` as a child, with
`drill=True`): the same resolution, shards, escalation interpreter and gateways as a
real call-out, but every message carries the 【演练】 marker, the call-out and its
outbox rows are marked drill, and no real statistic counts them. When the call-out
ends, the drill reports its response rate within the window (30 minutes) to the
leading leader and the duty chief, and stores it for the console's drill results.
"""
from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field
from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from definitions.schema.duty import Drill
    from workflows.callout import CalloutInput, CalloutSummary, WarningCalloutWorkflow
    from workflows.common import ACTIVITY
    from workflows.kit.names import Duty

DRILL_MARK = "【演练】"
OLD_DRILL_MARKS = ("[演练]",)  # written before issue 20: titles and texts stored then still read as drills


def unmarked(text: str) -> str:
    """`text` without the drill marker(s) it starts with, old or new (a title that is marked again)."""
    text = text.lstrip()
    while (mark := next((m for m in (DRILL_MARK, *OLD_DRILL_MARKS) if text.startswith(m)), None)) is not None:
        text = text[len(mark):].lstrip()
    return text


def is_drill_text(text: str) -> bool:
    return any(text.lstrip().startswith(m) for m in (DRILL_MARK, *OLD_DRILL_MARKS))


class DrillInput(BaseModel):
    drill: Drill
    version: str = ""
    trigger: str = Field(default="schedule", description="schedule | manual (who asked, for manual runs)")


class PrepareRequest(BaseModel):
    run_id: str
    temporal_run_id: str
    drill: Drill
    version: str
    trigger: str
    at: datetime


class Prepared(BaseModel):
    callout: CalloutInput | None = None
    sample: dict = Field(default_factory=dict)
    gap: str | None = None


class ReportRequest(BaseModel):
    run_id: str
    temporal_run_id: str
    callout_id: str
    drill: Drill
    summary: CalloutSummary | None = None
    gap: str | None = None


class DrillReport(BaseModel):
    run_id: str
    drill_id: str
    callout_id: str
    total: int = 0
    responded: int = 0
    acknowledged: int = 0
    rate: float | None = None
    window_s: int = 1800
    never: list[dict] = Field(default_factory=list)
    late: list[dict] = Field(default_factory=list)


def callout_id_for(run_id: str) -> str:
    return f"{run_id}/callout"


@workflow.defn
class DrillWorkflow:
    @workflow.run
    async def run(self, inp: DrillInput) -> DrillReport:
        wid = workflow.info().workflow_id
        prepared: Prepared = await workflow.execute_activity(
            Duty.DRILL_PREPARE, PrepareRequest(run_id=wid, temporal_run_id=workflow.info().run_id, drill=inp.drill,
                                               version=inp.version, trigger=inp.trigger, at=workflow.now()),
            result_type=Prepared, **ACTIVITY)
        summary = None
        if prepared.callout is not None:
            summary = await workflow.execute_child_workflow(WarningCalloutWorkflow.run, prepared.callout,
                                                            id=prepared.callout.callout_id)
        return await workflow.execute_activity(
            Duty.DRILL_REPORT, ReportRequest(run_id=wid, temporal_run_id=workflow.info().run_id,
                                             callout_id=callout_id_for(wid), drill=inp.drill, summary=summary,
                                             gap=prepared.gap),
            result_type=DrillReport, **ACTIVITY)
