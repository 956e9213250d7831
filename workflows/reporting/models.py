"""The reporting chain's messages: what it is started with, what people send it, what it shows and what
its activities take (workflows/reporting/workflow.py runs the chain)."""
from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field
from temporalio import workflow

from workflows.common import Actor, Event

with workflow.unsafe.imports_passed_through():
    from definitions.schema.reporting import Casualties, DisasterFigures, ReportingRules, Severity, UpwardRecipient
    from workflows.callout import ShardEvents
    from workflows.escalation import Record, Send, Target
    from workflows.kit.episodes import Episode

SOURCES = ("110", "119", "120", "12345", "department", "town", "field", "media")
ReportKind = Literal["written", "followup", "final"]


# ----------------------------------------------------------------- messages


class IncidentInfo(BaseModel):
    incident_id: str
    title: str
    received_at: datetime | None = Field(default=None, description="接报时间; None: when the workflow starts")
    source: str
    category: str
    subtype: str = ""
    severity: Severity | None = None
    town_id: str | None = None
    place: str = ""
    summary: str = ""
    casualties: Casualties = Field(default_factory=Casualties)
    figures: DisasterFigures | None = Field(default=None, description="灾情统计 at intake (totals)")
    reporting_unit: str = ""
    reporting_unit_id: str | None = None
    reporter: str = ""
    reporter_phone: str | None = None
    occurred_at: datetime | None = Field(default=None, description="事发时间")
    known_at: datetime | None = Field(default=None, description="知悉时间: when the reporting unit knew")
    reported_at: datetime | None = Field(default=None, description="the reporting unit's report to the duty office; "
                                                                   "None: the 接报 time")
    related: list[str] = Field(default_factory=list, description="audit subjects it follows from (a warning's call-out)")
    created_by: str = "system"


class Deadline(BaseModel):
    key: str
    kind: Literal["verbal", "written", "followup"]
    label: str
    due_at: datetime
    remind_at: datetime
    reminded_at: datetime | None = None
    overdue_at: datetime | None = None
    met_at: datetime | None = None
    met_by: str | None = None
    late_by_s: int | None = None
    settled: Literal["omitted", "lapsed"] | None = Field(
        default=None, description="how an unmet limit was closed with the chain: 漏报, or 未报(已终止) when not yet due")


class Draft(BaseModel):
    """A written report's content: facts fast, causes with care (快报事实、慎报原因)."""

    occurred_at: datetime | None = Field(default=None, description="时间")
    place: str = Field(min_length=1, max_length=500, description="地点")
    what_happened: str = Field(min_length=1, max_length=10000, description="事件经过")
    casualties: Casualties = Field(default_factory=Casualties, description="伤亡")
    figures: DisasterFigures | None = Field(default=None, description="灾情统计: totals (累计) as of this report")
    measures: str = Field(min_length=1, max_length=10000, description="已采取的措施")
    trend: str = Field(default="", max_length=5000, description="发展趋势")
    next_steps: str = Field(default="", max_length=5000, description="下一步工作")
    cause: str | None = Field(default=None, max_length=5000, description="原因(可暂缺,慎报)")
    severity: Severity | None = None


class Version(BaseModel):
    version: int
    content: Draft
    by: str
    at: datetime
    decision: Literal["approve", "return"] | None = None
    reviewed_by: str | None = None
    reviewed_at: datetime | None = None
    comments: str | None = None


class WrittenReport(BaseModel):
    seq: int
    kind: ReportKind
    label: str
    deadline_key: str
    state: Literal["in_review", "returned", "approved", "submitted"] = "in_review"
    versions: list[Version] = Field(default_factory=list)
    approved_by: str | None = None
    approved_at: datetime | None = None
    submitted_by: str | None = None
    submitted_at: datetime | None = None

    @property
    def latest(self) -> Version:
        return self.versions[-1]


class VerbalRecord(BaseModel):
    to_whom: str
    by_whom: str
    at: datetime
    channel: str = "phone"
    note: str | None = None
    recorded_by: str


class UnitReport(BaseModel):
    """How fast the reporting unit (a town, a department) reported to the duty office: from 知悉 (known_at) to its
    report (reported_at), against the rules' `unit_report_within`; late_by_s > 0 is its 迟报."""

    unit: str
    unit_id: str | None = None
    occurred_at: datetime | None = None
    known_at: datetime
    reported_at: datetime
    due_at: datetime
    late_by_s: int


class Upward(BaseModel):
    """One report owed upward (上报): the verbal report, or a submitted written report's version; `done` once every
    upward recipient for it has it (through the city line, or by SMS when the line is down)."""

    report_id: str = Field(description="<incident id>/verbal or <incident id>/<seq>")
    version: int
    kind: Literal["verbal", "written", "followup", "final"]
    label: str
    seq: int | None = None
    done: bool = False


class VerticalRecord(BaseModel):
    """拉条: the reporting department's own report to its city department (垂直管理), as it says, against when the
    district got it; gap_s > 0: the district got it that much later (report.vertical.gap)."""

    to_whom: str
    at: datetime
    note: str | None = None
    district_at: datetime
    gap_s: int
    recorded_by: str


class ChainState(BaseModel):
    received_at: datetime
    severity: Severity
    casualties: Casualties
    figures: DisasterFigures | None = Field(default=None, description="灾情统计 of the last approved report (or intake)")
    deadlines: list[Deadline]
    verbal: VerbalRecord | None = None
    reports: list[WrittenReport] = Field(default_factory=list)
    episodes: list[Episode] = Field(default_factory=list)
    fired: list[str] = Field(default_factory=list)
    closed_at: datetime | None = None
    settled_by: str | None = Field(default=None, description="the subject whose end settled the chain (activation/…, review/…)")
    response_ended_by: str | None = Field(default=None, description="the terminated response (activation/…) after which "
                                                                     "only the final report 终报 is owed")
    pending: ShardEvents = Field(default_factory=ShardEvents)
    runs: int = 1
    unit_report: UnitReport | None = None
    upward: list[Upward] = Field(default_factory=list)
    vertical: VerticalRecord | None = None


class ReportingInput(BaseModel):
    incident: IncidentInfo
    rules: ReportingRules
    rules_version: str
    max_history: int = Field(default=8000, description="continue as new past this many history events")
    state: ChainState | None = None


class VerbalIn(Actor):
    to_whom: str = Field(min_length=1, max_length=200, description="e.g. 区政府总值班室 张三")
    by_whom: str = Field(min_length=1, max_length=200)
    at: datetime | None = None
    channel: str = Field(default="phone", max_length=50)
    note: str | None = Field(default=None, max_length=2000)


class VerticalIn(Actor):
    to_whom: str = Field(min_length=1, max_length=200, description="the city department, e.g. 市气象局值班室")
    at: datetime = Field(description="when the department reported to it")
    note: str | None = Field(default=None, max_length=2000)


class DraftIn(Actor):
    draft: Draft


class ReviewIn(Actor):
    decision: Literal["approve", "return"]
    comments: str = Field(default="", max_length=5000)
    version: int | None = Field(default=None, description="the version reviewed; refused if a newer one exists")


class SubmitIn(Actor):
    pass


class SettleIn(BaseModel):
    """The end of a response (activation terminated) or of a review (signed off): the chain settles what is open."""

    by: str = Field(description="the audit subject that ends: activation/<id> or review/<incident>")
    actor: str = "system"
    reason: str = ""
    end: bool = Field(default=True, description="the chain ends (a review signed off); False: a response terminated, "
                                                "what is past is settled and the final report 终报 is still owed")


class SettleRequest(BaseModel):
    """What the `reporting.settle` activity takes: the incidents whose chains settle, and why."""

    incident_ids: list[str]
    by: str
    actor: str = "system"
    reason: str = ""
    end: bool = True


class SettleResult(BaseModel):
    settled: dict[str, dict[str, list[str]]] = Field(
        default_factory=dict, description="incident id -> {omitted, lapsed, late}: chains that settled now")
    already_closed: list[str] = Field(default_factory=list)


class TriggerView(BaseModel):
    id: str
    label: str
    state: str
    acknowledged_by: str | None = None
    acknowledged_at: datetime | None = None


class ChainView(BaseModel):
    incident_id: str
    workflow_id: str
    status: Literal["open", "closed"]
    received_at: datetime
    severity: Severity
    casualties: Casualties
    figures: DisasterFigures | None = None
    deadlines: list[Deadline]
    verbal: VerbalRecord | None
    reports: list[WrittenReport]
    triggers: list[TriggerView]
    closed_at: datetime | None
    runs: int
    settled_by: str | None = None
    response_ended_by: str | None = None
    unit_report: UnitReport | None = None
    vertical: VerticalRecord | None = None


class RecordRequest(BaseModel):
    workflow_id: str
    run_id: str
    incident: IncidentInfo
    rules_id: str
    rules_version: str
    events: list[Event]
    view: ChainView


UPWARD_ATTEMPTS = 3  # tries of the city line before the SMS fallback (the activity falls back on its last try)


class UpwardRequest(BaseModel):
    """What the `reporting.upward` activity takes: one report version to one upward recipient."""

    workflow_id: str
    run_id: str
    incident: IncidentInfo
    received_at: datetime
    severity: Severity
    item: Upward
    recipient: UpwardRecipient
    verbal: VerbalRecord | None = None
    report: WrittenReport | None = None


class UpwardResult(BaseModel):
    status: Literal["sent", "fallback"]
    receipt_id: str | None = None
    asked: bool = False


class RemindRequest(BaseModel):
    record: RecordRequest
    deadline: Deadline
    roles: list[str]


class TargetsRequest(BaseModel):
    purpose: Literal["overdue", "receipts", "trigger"]
    incident: IncidentInfo
    rules: ReportingRules
    call: str = ""
    policy: str


class TargetsResult(BaseModel):
    targets: list[Target]
    gaps: list[str] = Field(default_factory=list)


class FlushRequest(BaseModel):
    record: RecordRequest
    episode: str
    kind: str
    ref: str
    label: str
    text: str
    report: WrittenReport | None = None
    due_at: datetime | None = None
    sends: list[Send]
    records: list[Record]
    copies: list[str] = Field(default_factory=list, description="recipient ids that receive a copy (抄报)")


# ----------------------------------------------------------------- labels

ZH_DIGITS = "零一二三四五六七八九"


def zh_number(n: int) -> str:
    if n < 10:
        return ZH_DIGITS[n]
    tens, ones = divmod(n, 10)
    return (ZH_DIGITS[tens] if tens > 1 else "") + "十" + (ZH_DIGITS[ones] if ones else "")


FINAL_LABEL = "终报"
SETTLED_ZH = {"omitted": "漏报", "lapsed": "未报(已终止)"}


def overdue_text(title: str, label: str) -> str:
    """What the duty chief is told when a report's time limit passes (the activity adds the call to answer)."""
    return f"{title}:{label}时限已过,尚未报出。"


def label_of(kind: str, seq: int) -> str:
    return {"written": "书面报告", "final": FINAL_LABEL}.get(kind) or f"续报{zh_number(seq)}"


def limit_label(label: str, met_by: str | None) -> str:
    """A time limit's label: the limit after a report is the next report's, and when the final report 终报 met it, it
    is the final report's limit (not 续报N: older chains labelled it so)."""
    return FINAL_LABEL if met_by == FINAL_LABEL else label


def settle_as(d: Deadline, now: datetime) -> Literal["omitted", "lapsed"]:
    """How a limit still open when its chain settles is closed. The verbal and the written report are owed for every
    incident (seed 001: 30 min verbal, 1 h written), so one never made is 漏报 whatever the time; a follow-up 续报
    past its limit is 漏报 too, one not yet due is no longer owed once the response or the review ended: 未报(已终止)."""
    return "omitted" if d.kind in ("verbal", "written") or now >= d.due_at else "lapsed"


STATE_ZH = {"in_review": "待审核", "returned": "已退回修改", "approved": "已审核通过", "submitted": "已报送"}
