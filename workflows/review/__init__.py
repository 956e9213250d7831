"""Post-event review 复盘/总结评估 (seed 003 篇四 §三(三)3, 篇七 §三(八); seed 000 任务 8), one workflow per incident.

Started when a response is terminated (the activation starts it as a child *by name*:
type ``PostEventReviewWorkflow``, id ``review-{incident_id}``, one dict argument
``{"incident_id", "activation_id", "started_by", "units"}``) or by hand for any incident.

1. Every participating unit is asked for a written summary 书面总结 — what worked 经验做法,
   shortcomings 存在不足, suggestions 意见建议 — due after the template's deadline (7 days by
   default), with reminders before it; at the deadline the unit's head is called through
   the shared escalation interpreter (deputy, superior, the duty chief told).
2. When every summary is in (or, after the deadline, when the duty office decides), the
   preliminary event report 初步事件报告 is compiled: the timeline and the statistics are
   computed from the audit trail alone, with the summaries; HTML, PDF and JSON.
3. The leading leader signs it off (approve with the lessons 经验教训, or return with comments).
4. The case file 一事一档 is sealed: one archive with the report, the whole audit trail, every
   message, the definitions used and a manifest of hashes; its hash goes into the audit trail.

People act through updates whose validators say who may act and in which order.

The package: `models` (what it is started with, what people send, what it shows, what its
activities take), `rules` (the order of the steps, one rule per step), `workflow` (the
procedure). Its activities are activities/review/; its events are read back by store/review.
"""
from temporalio import workflow

with workflow.unsafe.imports_passed_through():  # one copy of the messages, inside and outside the sandbox
    from workflows.common import CONFLICT, FORBIDDEN, INVALID, Actor, Event  # noqa: F401 (as the API imports them from here)
    from workflows.escalation import FlushResult  # noqa: F401
    from workflows.review.models import (  # noqa: F401
        ACTIVITY, WORKFLOW_TYPE, ArchiveInfo, CompileIn, CompileRequest, FlushRequest, NotifyRequest, OpenRequest,
        OpenResult, RecordRequest, ReportInfo, ReviewInput, ReviewState, ReviewView, SealRequest, Signoff, SignoffIn,
        Status, SummaryContent, SummaryIn, TargetsRequest, TargetsResult, UnitRef, UnitState, UnitView, late_text,
        review_subject, review_workflow_id)
    from workflows.review.rules import RULES, answers_for, owner_refusal, refusal  # noqa: F401
from workflows.review.workflow import PostEventReviewWorkflow  # noqa: F401
