"""The yearly contact confirmation round 通讯录核实 (before 20 April, ahead of the flood season).

`FreshnessRoundWorkflow` opens the round (every person of the directory, in shards of
~500 like a call-out), starts one `FreshnessShardWorkflow` per shard and closes the
round at its deadline: who confirmed, who did not, whose number bounced. Each shard runs
the shared escalation interpreter: an SMS with a signed confirmation link, reminders
(the policy's repeats), until the person confirms (the link, or a reply from that phone)
or the round's deadline. A confirmation sets the person's last-confirmed date.
"""
from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from pydantic import BaseModel, Field
from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from definitions.schema.duty import FreshnessSettings
    from workflows.callout import ShardEvents
    from workflows.common import ACTIVITY, Event
    from workflows.kit.names import Duty
    from workflows.kit.shards import shard_id
    from workflows.duty import run_escalation
    from workflows.escalation import Escalation, Inbox, Target


class FreshnessInput(BaseModel):
    settings: FreshnessSettings
    version: str = ""
    deadline: datetime | None = Field(default=None, description="default: the next round_by day (local) after the start")
    started_by: str = "schedule"


class OpenRequest(BaseModel):
    round_id: str
    run_id: str
    settings: FreshnessSettings
    version: str
    deadline: datetime | None
    started_by: str
    at: datetime


class ShardInfo(BaseModel):
    index: int
    count: int


class Opened(BaseModel):
    deadline: datetime
    total: int
    shards: list[ShardInfo] = Field(default_factory=list)


class ShardInput(BaseModel):
    round_id: str
    shard: int
    settings: FreshnessSettings
    deadline: datetime


class ShardResult(BaseModel):
    counts: dict[str, int] = Field(default_factory=dict)


class CloseRequest(BaseModel):
    round_id: str
    workflow_id: str
    run_id: str
    counts: dict[str, int]


class RoundSummary(BaseModel):
    round_id: str
    deadline: datetime | None = None
    total: int = 0
    confirmed: int = 0
    unconfirmed: list[str] = Field(default_factory=list)
    bounced: list[str] = Field(default_factory=list)


@workflow.defn
class FreshnessShardWorkflow:
    def __init__(self) -> None:
        self.inbox = Inbox()
        self.esc: Escalation | None = None
        self.past_deadline = False

    @workflow.run
    async def run(self, inp: ShardInput) -> ShardResult:
        targets: list[Target] = await workflow.execute_activity(
            Duty.FRESHNESS_LOAD, args=[inp.round_id, inp.shard], result_type=list[Target], **ACTIVITY)
        self.esc = Escalation.start(workflow.info().workflow_id, {"ask": inp.settings.policy}, targets)

        async def deadline() -> None:
            await workflow.sleep(max(inp.deadline - workflow.now(), timedelta(0)))
            self.past_deadline = True

        timer = asyncio.create_task(deadline())
        await run_escalation(self.esc, self.inbox, "freshness", inp.round_id, f"shard-{inp.shard}",
                             lambda: {"deadline": inp.deadline.isoformat(), "round_id": inp.round_id},
                             until=lambda: self.past_deadline)
        timer.cancel()
        return ShardResult(counts=self.esc.counts())

    @workflow.signal(name="events")
    def events(self, batch: ShardEvents) -> None:
        self.inbox.put([*batch.acks, *batch.reports])

    @workflow.query
    def counts(self) -> dict[str, int]:
        return self.esc.counts() if self.esc else {}


@workflow.defn
class FreshnessRoundWorkflow:
    @workflow.run
    async def run(self, inp: FreshnessInput) -> RoundSummary:
        rid = workflow.info().workflow_id
        opened: Opened = await workflow.execute_activity(
            Duty.FRESHNESS_OPEN, OpenRequest(round_id=rid, run_id=workflow.info().run_id, settings=inp.settings,
                                             version=inp.version, deadline=inp.deadline, started_by=inp.started_by,
                                             at=workflow.now()),
            result_type=Opened, **ACTIVITY)
        handles = []
        for sh in opened.shards:
            handles.append(await workflow.start_child_workflow(
                FreshnessShardWorkflow.run,
                ShardInput(round_id=rid, shard=sh.index, settings=inp.settings, deadline=opened.deadline),
                id=shard_id(rid, sh.index)))
        counts: dict[str, int] = {}
        for result in await asyncio.gather(*handles):
            for k, n in result.counts.items():
                counts[k] = counts.get(k, 0) + n
        if opened.deadline > workflow.now():  # every shard ended early (everyone confirmed): the round still runs
            await workflow.sleep(opened.deadline - workflow.now())
        return await workflow.execute_activity(
            Duty.FRESHNESS_CLOSE, CloseRequest(round_id=rid, workflow_id=rid, run_id=workflow.info().run_id,
                                               counts=counts),
            result_type=RoundSummary, **ACTIVITY)


__all__ = ["Event", "FreshnessInput", "FreshnessRoundWorkflow", "FreshnessShardWorkflow", "RoundSummary"]
