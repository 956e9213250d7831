"""Incident reporting chain 信息报送 (seed 001 §三(二)2), one workflow per incident.

From 接报 (the moment the duty office learns of an incident): a verbal report
within the rules' time (30 min in the district), a written report within its
time (1 h): drafted by the duty cadre, reviewed by the leading leader (approve,
or return with comments → redraft), then submitted to every recipient through
the gateway, each confirming receipt. Then follow-ups 续报一, 续报二 … each due a
rule-given interval after the previous one, until the final report 终报 closes
the chain. Before each deadline a reminder; at expiry an escalation (the shared
interpreter: duty chief, then leading leader) and, when the report comes, a
permanent late mark saying by how much. Facts that reach a trigger (a death →
the sector's district leader to the scene) start a call-out with acknowledgement.

People act through updates whose validators enforce the procedure: who may do
a step, and in which order. Every step is written to the audit chain.

The package: `models` (what it is started with, what people send, what it shows, what its
activities take), `rules` (the order of the steps, one rule per step), `workflow` (the
procedure). Its activities are activities/reporting.py; its events are read back by
store/replay and store/review.
"""
from temporalio import workflow

with workflow.unsafe.imports_passed_through():  # one copy of the messages, inside and outside the sandbox
    from workflows.common import CONFLICT, FORBIDDEN, INVALID, Event  # noqa: F401 (as the API imports them from here)
    from workflows.escalation import FlushResult  # noqa: F401
    from workflows.reporting.models import (  # noqa: F401
        SOURCES, STATE_ZH, ChainState, ChainView, Deadline, Draft, DraftIn, FlushRequest, IncidentInfo, RecordRequest,
        RemindRequest, ReportingInput, ReportKind, ReviewIn, SettleIn, SettleRequest, SettleResult, SubmitIn, TargetsRequest,
        TargetsResult, TriggerView, VerbalIn, VerbalRecord, VerticalIn, Version, WrittenReport, label_of, limit_label, zh_number)
    from workflows.reporting.rules import RULES, refusal  # noqa: F401
from workflows.reporting.workflow import IncidentReportingWorkflow  # noqa: F401
