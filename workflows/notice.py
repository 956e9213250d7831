"""A notice to those on duty 值班通知: one SMS to whoever holds the named duty roles now, no answer wanted,
recorded in the audit trail under the subject it is about.

What starts it: the API, when a step needs someone told and has no workflow of its own to tell them (pausing a
drill schedule that takes the drill programme below its weekly minimum tells the duty chief: api/services/duty/
schedules.py). The API never sends itself; the workflow's one activity (`duty.notice`, activities/duty/notice.py)
looks up who is on duty, sends through the outbox (`deliver`) and appends the event, so a retry sends nothing twice.
"""
from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field
from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from workflows.common import ACTIVITY
    from workflows.kit.names import Duty


class NoticeInput(BaseModel):
    subject: str = Field(description="the audit subject the notice is about (e.g. 'schedules')")
    kind: str = Field(description="the audit event kind recorded (registered in workflows/kit/events.py)")
    roles: list[str] = Field(min_length=1, description="duty roles told, e.g. ['duty_chief']")
    body: str = Field(min_length=1, max_length=1000, description="the SMS, Chinese only")
    payload: dict = Field(default_factory=dict, description="what the audit event records besides whom it reached")
    actor: str = "system"


class NoticeRequest(BaseModel):
    workflow_id: str
    run_id: str
    at: datetime
    notice: NoticeInput


class NoticeResult(BaseModel):
    sent_to: list[dict] = Field(default_factory=list, description="role, person_id of each person told")
    statuses: list[str] = Field(default_factory=list)


def notice_workflow_id(subject: str, key: str) -> str:
    return f"notice-{subject}-{key}"


@workflow.defn
class DutyNoticeWorkflow:
    @workflow.run
    async def run(self, inp: NoticeInput) -> NoticeResult:
        info = workflow.info()
        return await workflow.execute_activity(
            Duty.NOTICE, NoticeRequest(workflow_id=info.workflow_id, run_id=info.run_id, at=workflow.now(), notice=inp),
            result_type=NoticeResult, **ACTIVITY)
