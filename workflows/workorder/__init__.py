"""Hotline work orders 工单 (seed 003 篇六: 12345 与 110 联动, 闭环, 跟踪督办; seed 000 任务18), one workflow per ticket.

A work order comes in from a hotline (POST /api/workorders or the platform's signed webhook); the duty office
assigns it to a department or a town (分拨; the definitions propose one by category and town). The unit's
responsible person signs for it (签收) — by the signed link, an SMS reply or a keypress of the signing call the
shared escalation interpreter makes (deputy, superior, duty chief when nobody signs), or on the console —, may
return it with a reason (退回; the duty office reassigns it), gives feedback (反馈) and reports it done (办结), each
within the definitions' limits (a late step keeps a permanent mark; an overdue feedback or completion is chased, 督办).
The duty office checks it and closes it or sends it back (退回重办); the result then goes to the hotline platform
(回访: an activity, retried, idempotent by ticket and version) and the caller's satisfaction it answers is recorded.
A 110/119/120 notice can become an incident (the reporting chain starts, both trails point at each other).

The package: `models` (messages, state, view), `rules` (the order of the steps and who may take them on which
order), `workflow`. Its activities are activities/workorder.py; its read model store/workorders.py.
"""
from temporalio import workflow

with workflow.unsafe.imports_passed_through():  # one copy of the messages, inside and outside the sandbox
    from workflows.common import CONFLICT, FORBIDDEN, INVALID, NOT_FOUND  # noqa: F401
    from workflows.escalation import FlushResult  # noqa: F401
    from workflows.workorder.models import (  # noqa: F401
        SATISFACTION, STATUS_ZH, STEP_ZH, WORKFLOW_TYPE, AssignIn, Assignment, CloseIn, CompleteIn, Deadline, Feedback,
        FeedbackIn, FlushRequest, IncidentLinkIn, NotifyRequest, PostRequest, PostResult, RecordRequest, ReturnIn,
        SatisfactionIn, SignIn, UnitRequest, UnitResult, Visit, WorkOrderInfo, WorkOrderInput, WorkOrderState,
        WorkOrderView, workorder_workflow_id)
    from workflows.workorder.rules import RULES, Order, refusal  # noqa: F401
from workflows.workorder.workflow import WorkOrderWorkflow  # noqa: F401

__all__ = ["CONFLICT", "FORBIDDEN", "INVALID", "NOT_FOUND", "FlushResult", "SATISFACTION", "STATUS_ZH", "STEP_ZH",
           "WORKFLOW_TYPE", "AssignIn", "Assignment", "CloseIn", "CompleteIn", "Deadline", "Feedback", "FeedbackIn",
           "FlushRequest", "IncidentLinkIn", "NotifyRequest", "PostRequest", "PostResult", "RecordRequest", "ReturnIn",
           "SatisfactionIn", "SignIn", "UnitRequest", "UnitResult", "Visit", "WorkOrderInfo", "WorkOrderInput",
           "WorkOrderState", "WorkOrderView", "workorder_workflow_id", "RULES", "Order", "refusal", "WorkOrderWorkflow"]
