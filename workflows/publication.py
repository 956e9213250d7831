"""Publication below orange 精准发布 (seed 000 任务 13-14): a yellow or blue warning whose call-out plan has a
`publish:` section for its level is sent once to each person the section names, by its channels.

No 叫应: nobody is asked to answer, nobody is escalated to, there is no voice call and no second message. The
workflow records each send and the gateway's delivery reports (which reach it as the call-out shards' do: the
`events` signal, by the outbox row's workflow id), and ends when every message has a final delivery state or
after the plan's bounded wait (`publish.wait`, 30 min by default), with a summary (sent, delivered, failed,
delivery rate). A reply is recorded as any inbound message is; it changes nothing here.

Purposes: `publish` (the warning itself), `update` (a CAP Update below orange: its own publication, the new
text to everyone in scope of its level), `cancel` (a CAP Cancel: a short 解除 notice to the persons the
earlier publications reached, `informed_by`). A running publication is told by `superseded` that a call-out,
an update or a cancel took over (recorded in its trail); a call-out ends it at once.

Workflow id and audit subject: `publication-<warning id>` (workflows/subjects.publication_subject).
"""
from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Literal

from pydantic import BaseModel, Field
from temporalio import workflow

from workflows.common import ACTIVITY

with workflow.unsafe.imports_passed_through():
    from definitions.schema.callout import CalloutPlan
    from workflows.callout import ShardEvents, WarningInfo
    from workflows.escalation import Report
    from workflows.kit.events import FAILED_STATUSES
    from workflows.kit.names import Publication

FINAL_STATUSES = frozenset({"delivered"}) | FAILED_STATUSES
"""A message's states after which no report is awaited."""
DEFAULT_WAIT = timedelta(minutes=30)


class PublicationInput(BaseModel):
    publication_id: str
    warning: WarningInfo
    plan: CalloutPlan
    plan_version: str
    purpose: Literal["publish", "update", "cancel"] = "publish"
    informed_by: list[str] = Field(default_factory=list, description="cancel: the publications whose persons are told")
    drill: bool = False


class SendRequest(BaseModel):
    inp: PublicationInput
    workflow_id: str
    run_id: str


class SendOutcome(BaseModel):
    key: str
    status: str


class SendResult(BaseModel):
    persons: int = 0
    sends: list[SendOutcome] = Field(default_factory=list)


class Deliveries(BaseModel):
    publication_id: str
    workflow_id: str
    reports: list[Report]


class Superseded(BaseModel):
    by: str = Field(description="what took over: a call-out's id, or the publication of an Update or Cancel")
    reason: str = ""


class SupersededNote(BaseModel):
    publication_id: str
    workflow_id: str
    note: Superseded


class PublicationEnd(BaseModel):
    publication_id: str
    workflow_id: str
    status: str
    reason: str = ""
    drill: bool = False


class PublicationSummary(BaseModel):
    status: str
    persons: int = 0
    sent: int = 0
    delivered: int = 0
    failed: int = 0
    rate: float | None = None


def publication_wait(plan: CalloutPlan) -> timedelta:
    return plan.publish.wait if plan.publish is not None else DEFAULT_WAIT


@workflow.defn
class PublicationWorkflow:
    def __init__(self) -> None:
        self.reports: list[Report] = []
        self.notes: list[Superseded] = []
        self.stopped_by: str | None = None
        self.status = "starting"

    @workflow.run
    async def run(self, inp: PublicationInput) -> PublicationSummary:
        wid = workflow.info().workflow_id
        await workflow.execute_activity(Publication.OPEN, inp, **ACTIVITY)
        self.status = "sending"
        sent: SendResult = await workflow.execute_activity(
            Publication.SEND, SendRequest(inp=inp, workflow_id=wid, run_id=workflow.info().run_id),
            result_type=SendResult, **ACTIVITY)
        mine = {o.key for o in sent.sends}
        waiting = {o.key for o in sent.sends if o.status not in FINAL_STATUSES}
        self.status = "waiting"
        deadline = workflow.now() + publication_wait(inp.plan)
        while True:
            if self.notes:
                notes, self.notes = self.notes, []
                for note in notes:
                    await workflow.execute_activity(Publication.SUPERSEDED, SupersededNote(
                        publication_id=inp.publication_id, workflow_id=wid, note=note), **ACTIVITY)
                    if note.by.startswith("callout-"):  # the call-out calls them now: this publication is over
                        self.stopped_by = note.by
            if self.reports:
                reports = [r for r in self.reports if r.send_key in mine]
                self.reports = []
                if reports:
                    await workflow.execute_activity(Publication.DELIVERY, Deliveries(
                        publication_id=inp.publication_id, workflow_id=wid, reports=reports), **ACTIVITY)
                    waiting -= {r.send_key for r in reports if r.status in FINAL_STATUSES}
            if not waiting or self.stopped_by is not None or workflow.now() >= deadline:
                if self.reports or self.notes:
                    continue  # what arrived while the last batch was written is recorded first
                break
            try:
                await workflow.wait_condition(lambda: bool(self.reports or self.notes),
                                              timeout=deadline - workflow.now())
            except asyncio.TimeoutError:
                pass
        status = "superseded" if self.stopped_by else ("completed" if not waiting else "timed_out")
        self.status = status
        return await workflow.execute_activity(
            Publication.FINISH, PublicationEnd(publication_id=inp.publication_id, workflow_id=wid, status=status,
                                               reason=self.stopped_by or "", drill=inp.drill),
            result_type=PublicationSummary, **ACTIVITY)

    @workflow.signal
    def events(self, batch: ShardEvents) -> None:
        """The gateway's delivery reports (as a call-out shard gets them). Answers are not asked for: an ack
        here is ignored (the inbound message is recorded by the API like any other)."""
        self.reports.extend(batch.reports)

    @workflow.signal
    def superseded(self, note: Superseded) -> None:
        self.notes.append(note)

    @workflow.query
    def state(self) -> str:
        return self.status
