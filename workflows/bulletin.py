"""The monthly bulletin 通报 (issue 22, item 3; seeds 002, 003 篇四: 考核 and 通报 per town and department).

A Temporal Schedule starts it on the first working day of the month at 09:00 local (api/services/duty/schedules.py,
`bulletin-monthly`), or `POST /api/bulletins` for a month. The workflow compiles the month (activity
`bulletin.compile`: store/bulletins.py, the ranking, the units below the thresholds of definitions/assessment/, the late
and missing reports, the unanswered call-outs, the drill weeks, HTML and PDF), then waits for the leading leader:
`approve` or `return` (updates whose validators check the role and the state; a return needs a reason and the
bulletin is compiled again, as a new version, from the audit trail as it then stands). Approved, it is sealed
(`bulletin.seal`: the approved version rendered as issued, its PDF's SHA-256 in `bulletin.sealed`) and sent to the
units' heads (`bulletin.send`: one Chinese SMS each with their unit's score and what fell short). No I/O here.
"""
from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field
from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from workflows.common import ACTIVITY, CONFLICT, FORBIDDEN, INVALID, Actor, Event
    from workflows.kit.events import Bulletin as Kinds
    from workflows.kit.names import Bulletin as Acts
    from workflows.kit.roles import may_not

APPROVERS = ("leading_leader",)
Status = Literal["compiling", "awaiting", "returned", "approved", "sealed", "duplicate"]


class BulletinInput(BaseModel):
    month: str | None = Field(default=None, pattern=r"^\d{4}-(0[1-9]|1[0-2])$",
                              description="YYYY-MM; none: the month before the one the workflow starts in (local)")
    started_by: str = "schedule"


class CompileRequest(BaseModel):
    workflow_id: str
    run_id: str
    month: str | None
    at: datetime
    version: int
    by: str


class Compiled(BaseModel):
    month: str
    version: int
    sha256_json: str = ""
    sha256_pdf: str = ""
    duplicate_of: str | None = Field(default=None, description="the workflow that has this month's bulletin already")


class Return(BaseModel):
    version: int
    by: str
    at: datetime
    reason: str


class BulletinView(BaseModel):
    month: str | None = None
    status: Status = "compiling"
    version: int = 0
    sha256_json: str = ""
    sha256_pdf: str = ""
    returns: list[Return] = Field(default_factory=list)
    approved_by: str | None = None
    approved_at: datetime | None = None
    seal_sha256: str | None = None
    sealed_at: datetime | None = None


class DecisionIn(Actor):
    reason: str = Field(default="", max_length=2000, description="why it is returned (required to return)")


class RecordRequest(BaseModel):
    workflow_id: str
    run_id: str
    events: list[Event]
    view: BulletinView


class SealRequest(BaseModel):
    workflow_id: str
    run_id: str
    view: BulletinView


class Sealed(BaseModel):
    sha256_pdf: str
    seal_sha256: str
    sealed_at: datetime


class SendRequest(BaseModel):
    workflow_id: str
    run_id: str
    view: BulletinView


@workflow.defn
class BulletinWorkflow:
    def __init__(self) -> None:
        self.v = BulletinView()
        self.decided: str | None = None

    @workflow.run
    async def run(self, inp: BulletinInput) -> BulletinView:
        compiled = await self._compile(inp.month, inp.started_by)
        if compiled.duplicate_of:
            self.v.status = "duplicate"
            return self.v
        while True:
            await workflow.wait_condition(lambda: self.decided is not None)
            decided, self.decided = self.decided, None
            if decided == "approve":
                break
            await self._compile(self.v.month, self.v.returns[-1].by)
        await workflow.wait_condition(workflow.all_handlers_finished)
        sealed: Sealed = await workflow.execute_activity(
            Acts.SEAL, SealRequest(workflow_id=self._wid(), run_id=self._rid(), view=self.v), result_type=Sealed,
            **ACTIVITY)
        self.v.status, self.v.sha256_pdf = "sealed", sealed.sha256_pdf
        self.v.seal_sha256, self.v.sealed_at = sealed.seal_sha256, sealed.sealed_at
        await workflow.execute_activity(Acts.SEND, SendRequest(workflow_id=self._wid(), run_id=self._rid(), view=self.v),
                                        **ACTIVITY)
        return self.v

    async def _compile(self, month: str | None, by: str) -> Compiled:
        self.v.status = "compiling"
        compiled: Compiled = await workflow.execute_activity(
            Acts.COMPILE, CompileRequest(workflow_id=self._wid(), run_id=self._rid(), month=month, at=workflow.now(),
                                         version=self.v.version + 1, by=by), result_type=Compiled, **ACTIVITY)
        self.v.month = compiled.month
        if compiled.duplicate_of is None:
            self.v.version, self.v.sha256_json, self.v.sha256_pdf = (compiled.version, compiled.sha256_json,
                                                                     compiled.sha256_pdf)
            self.v.status = "awaiting"
        return compiled

    # ------------------------------------------------------------- the leading leader's decision

    def _refusal(self, req: DecisionIn, what_zh: str, what_en: str) -> None:
        if req.role not in APPROVERS:
            raise ApplicationError(may_not(req.role, what_zh, what_en, APPROVERS), type=FORBIDDEN)
        if self.v.status != "awaiting":
            now = {"compiling": "正在汇编", "returned": "已退回重新汇编", "approved": "已审定", "sealed": "已印发封存",
                   "duplicate": "本月通报由另一流程办理"}.get(self.v.status, self.v.status)
            raise ApplicationError(f"通报{now},不能{what_zh} / the bulletin is {self.v.status}; nothing to {what_en}",
                                   type=CONFLICT)

    @workflow.update(name="approve")
    async def approve(self, req: DecisionIn) -> BulletinView:
        self._refusal(req, "审定通报", "approve")
        now = workflow.now()
        self.v.status, self.v.approved_by, self.v.approved_at = "approved", req.actor, now
        await self._record(Event(kind=Kinds.APPROVED, step_id=f"v{self.v.version}/approved", actor=req.actor, at=now,
                                 payload={"version": self.v.version, "sha256_json": self.v.sha256_json,
                                          "sha256_pdf": self.v.sha256_pdf, "role": req.role}))
        self.decided = "approve"
        return self.v

    @approve.validator
    def _approve_ok(self, req: DecisionIn) -> None:
        self._refusal(req, "审定通报", "approve")

    @workflow.update(name="return")
    async def return_(self, req: DecisionIn) -> BulletinView:
        self._refusal(req, "退回通报", "return")
        now = workflow.now()
        self.v.status = "returned"
        self.v.returns.append(Return(version=self.v.version, by=req.actor, at=now, reason=req.reason.strip()))
        await self._record(Event(kind=Kinds.RETURNED, step_id=f"v{self.v.version}/returned", actor=req.actor, at=now,
                                 payload={"version": self.v.version, "reason": req.reason.strip(), "role": req.role}))
        self.decided = "return"
        return self.v

    @return_.validator
    def _return_ok(self, req: DecisionIn) -> None:
        self._refusal(req, "退回通报", "return")
        if not req.reason.strip():
            raise ApplicationError("退回通报须说明理由(reason) / a return needs a reason", type=INVALID)

    @workflow.query
    def view(self) -> BulletinView:
        return self.v

    # ------------------------------------------------------------- plumbing

    async def _record(self, *events: Event) -> None:
        await workflow.execute_activity(Acts.RECORD, RecordRequest(workflow_id=self._wid(), run_id=self._rid(),
                                                                   events=list(events), view=self.v), **ACTIVITY)

    def _wid(self) -> str:
        return workflow.info().workflow_id

    def _rid(self) -> str:
        return workflow.info().run_id
