"""The reporting chain's rules of order, one rule per step: verbal → written (draft, review, submit) →
follow-ups 续报 → final 终报. Every step first passes `before`: the rules' role for it, and a chain
not yet closed. Unit-tested in tests/unit/test_procedure_rules.py."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from temporalio import workflow

from workflows.common import CONFLICT, FORBIDDEN, INVALID, Actor
from workflows.kit.roles import may_not
from workflows.kit.rules import Refusal, RuleBook

with workflow.unsafe.imports_passed_through():
    from definitions.schema.reporting import FIGURE_FIELDS, FIGURES_ZH, ReportingRules
    from workflows.reporting.models import STATE_ZH, ChainState, ReviewIn, VerbalIn, VerticalIn, WrittenReport

ROLE_OF = {"verbal": "verbal", "vertical": "verbal", "draft": "draft", "followup": "draft", "final": "draft", "review": "review",
           "submit": "submit"}
ACTION_ZH = {"verbal": "登记口头报告", "vertical": "登记拉条报告", "draft": "起草书面报告", "followup": "起草续报", "final": "起草终报",
             "review": "审核书面报告", "submit": "报送书面报告"}


@dataclass
class Chain:
    """What a step is judged against: the chain's state and its rules."""

    s: ChainState
    rules: ReportingRules

    @property
    def last(self) -> WrittenReport | None:
        return self.s.reports[-1] if self.s.reports else None


def _open_to_the_role(c: Chain, action: str, req: Actor, now: datetime) -> Refusal | None:
    allowed = getattr(c.rules.roles, ROLE_OF[action])
    if req.role not in allowed:
        return FORBIDDEN, may_not(req.role, ACTION_ZH.get(action, action), f"{action.replace('_', ' ')} here", allowed)
    if c.s.closed_at is not None and c.s.settled_by is not None:
        return CONFLICT, (f"报送已随{'响应终止' if c.s.settled_by.startswith('activation/') else '复盘签发'}办结,未报的已记为漏报,"
                          f"不再报送 / the chain was settled when {c.s.settled_by} ended ({c.s.closed_at.isoformat()}): "
                          "what was not reported is marked omitted; nothing more is reported")
    if c.s.closed_at is not None:
        return CONFLICT, ("终报已报送,本事件报送已办结,不再报送 / "
                          f"the chain was closed by the final report 终报 at {c.s.closed_at.isoformat()}; "
                          "nothing more is reported")
    return None


RULES: RuleBook[Chain] = RuleBook("reporting", before=_open_to_the_role)


@RULES.rule("verbal")
def verbal(c: Chain, req: VerbalIn, now: datetime) -> Refusal | None:
    if c.s.verbal is not None:
        return CONFLICT, ("口头报告已于此前登记,无需重复登记 / "
                          f"the verbal report was recorded already (at {c.s.verbal.at.isoformat()} "
                          f"to {c.s.verbal.to_whom})")
    if req.at is not None and req.at > now + timedelta(minutes=1):
        return INVALID, "口头报告时间不能晚于当前时间 / at: the verbal report cannot be in the future"
    if req.at is not None and req.at < c.s.received_at:
        return INVALID, f"口头报告时间不能早于接报时间 / at: before the incident was received ({c.s.received_at.isoformat()})"
    return None


@RULES.rule("vertical")
def vertical(c: Chain, req: VerticalIn, now: datetime) -> Refusal | None:
    if c.s.vertical is not None:
        return CONFLICT, ("拉条报告已登记,无需重复登记 / "
                          f"the report to the city department was recorded already ({c.s.vertical.to_whom})")
    if req.at.tzinfo is None:
        return INVALID, "at: give a time zone, e.g. 2026-07-01T03:40:00+08:00"
    if req.at > now + timedelta(minutes=2):
        return INVALID, "拉条报告时间不能晚于当前时间 / at: the report to the city department cannot be in the future"
    return None


def _figures_fall(c: Chain, req: Actor) -> Refusal | None:
    """灾情统计 are running totals: a report may not give a smaller total than the chain's (the last approved report's
    or the intake's) unless it says why (`figures.correction`, 核减说明)."""
    draft = getattr(req, "draft", None)
    new, old = getattr(draft, "figures", None), c.s.figures
    if new is None or old is None or (new.correction or "").strip():
        return None
    fell = [f for f in FIGURE_FIELDS if getattr(new, f) < getattr(old, f)]
    if not fell:
        return None
    zh = "、".join(f"{FIGURES_ZH[f][0]}{getattr(new, f):g}<{getattr(old, f):g}{FIGURES_ZH[f][1]}" for f in fell)
    return INVALID, (f"灾情数据为累计数,不能小于上次报告:{zh};如需核减请填写核减说明 / figures: totals below the last "
                     f"report's ({', '.join(f'{f} {getattr(new, f):g} < {getattr(old, f):g}' for f in fell)}); "
                     "give figures.correction to lower them")


@RULES.rule("draft")
def draft(c: Chain, req: Actor, now: datetime) -> Refusal | None:
    r = c.last
    if r is None:
        return _figures_fall(c, req)
    if r.state == "in_review":
        return CONFLICT, (f"{r.label}第{r.latest.version}版正在审核,退回后方可修改 / "
                          f"{r.label} v{r.latest.version} is with the reviewer; it can be redrafted once returned")
    if r.state == "approved":
        return CONFLICT, (f"{r.label}已审核通过,不能再修改:请先报送,新情况以续报报送 / "
                          f"{r.label} was approved and cannot be edited: "
                          "submit it, then report new facts in a follow-up 续报")
    if r.state == "submitted":
        return CONFLICT, (f"{r.label}已报送,新情况请以续报或终报报送 / "
                          f"{r.label} was submitted; "
                          "report new facts as a follow-up (/followups) or the final report (/final)")
    return _figures_fall(c, req)


def _after_a_submitted_report(c: Chain, what_next: str, what_next_zh: str) -> Refusal | None:
    r = c.last
    if r is not None and r.state == "submitted":
        return None
    what = "the written report" if r is None else f"{r.label} ({STATE_ZH[r.state]})"
    what_zh = "书面报告尚未报送" if r is None else f"{r.label}{STATE_ZH[r.state]},尚未报送"
    return CONFLICT, f"{what_zh},报送后方可{what_next_zh} / {what} must be submitted before {what_next}"


@RULES.rule("followup")
def followup(c: Chain, req: Actor, now: datetime) -> Refusal | None:
    if c.s.response_ended_by is not None:
        return CONFLICT, ("响应已终止,现应报送终报,不再续报 / "
                          f"the response ({c.s.response_ended_by}) was terminated: "
                          "what is owed now is the final report "
                          "终报 (/final), not a follow-up")
    return _after_a_submitted_report(c, "a follow-up 续报", "起草续报") or _figures_fall(c, req)


@RULES.rule("final")
def final(c: Chain, req: Actor, now: datetime) -> Refusal | None:
    return _after_a_submitted_report(c, "a final report 终报", "起草终报") or _figures_fall(c, req)


@RULES.rule("review")
def review(c: Chain, req: ReviewIn, now: datetime) -> Refusal | None:
    r = c.last
    if r is None:
        return CONFLICT, "没有待审核的书面报告 / there is no draft to review"
    if r.state != "in_review":
        return CONFLICT, (f"{r.label}{STATE_ZH[r.state]},只有待审核的报告才能审核通过或退回 / "
                          f"{r.label} is {r.state} ({STATE_ZH[r.state]}): "
                          "only a draft awaiting review can be approved or returned")
    if req.version is not None and req.version != r.latest.version:
        return CONFLICT, (f"第{req.version}版不是{r.label}的最新稿(最新为第{r.latest.version}版) / "
                          f"version {req.version} is not the latest draft of {r.label} (v{r.latest.version})")
    if req.actor == r.latest.by:
        return FORBIDDEN, "起草人不能审核本人起草的报告 / the drafter cannot review their own draft"
    if req.decision == "return" and not req.comments.strip():
        return INVALID, "退回时请写明修改意见 / comments: say what to change when returning a draft"
    return None


@RULES.rule("submit")
def submit(c: Chain, req: Actor, now: datetime) -> Refusal | None:
    r = c.last
    if r is None:
        return CONFLICT, "没有可报送的报告,请先起草书面报告 / nothing to submit: draft the written report first"
    if r.state == "returned":
        return CONFLICT, (f"{r.label}第{r.latest.version}版已退回修改,请按审核意见修改并经审核通过后再报送 / "
                          f"{r.label} v{r.latest.version} was returned with comments ({r.latest.comments}); "
                          "redraft it and have it approved before submitting")
    if r.state == "in_review":
        return CONFLICT, (f"{r.label}第{r.latest.version}版尚未审核通过 / "
                          f"{r.label} v{r.latest.version} has not been approved yet")
    if r.state == "submitted":
        return CONFLICT, (f"{r.label}已于此前报送,无需重复报送 / "
                          f"{r.label} was submitted already at {r.submitted_at.isoformat() if r.submitted_at else '?'}")
    return None


def refusal(s: ChainState, rules: ReportingRules, action: str, req: Actor, now: datetime) -> Refusal | None:
    """Why the chain refuses this step now, as (forbidden | conflict | invalid, reason); None if allowed."""
    return RULES.refusal(action, Chain(s, rules), req, now)
