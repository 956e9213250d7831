"""The post-event review's rules of order, one rule per step: summaries (from the unit, or entered on its
behalf) → compile → sign-off. Every step first passes `before`: the review is open, the template's role
for the step, and a review not yet signed off. Unit-tested in tests/unit/test_review_rules.py."""
from __future__ import annotations

from datetime import datetime

from temporalio import workflow

from workflows.common import CONFLICT, FORBIDDEN, INVALID, Actor
from workflows.kit.roles import may_not
from workflows.kit.rules import Refusal, RuleBook

with workflow.unsafe.imports_passed_through():
    from workflows.review.models import ReportInfo, ReviewState, SignoffIn, SummaryIn


ACTION_ZH = {"summary": "提交或代填单位总结", "compile": "汇编事件报告", "signoff": "签发事件报告"}


def _open_to_the_role(s: ReviewState | None, action: str, req: Actor, now: datetime) -> Refusal | None:
    if s is None:
        return CONFLICT, "复盘正在启动,请稍后再试 / the review is still opening; try again in a moment"
    t = s.opened.template
    allowed = getattr(t.roles, action)
    if action == "summary":
        allowed = [*allowed, *(r for r in t.roles.on_behalf if r not in allowed)]
    if req.role not in allowed:
        return FORBIDDEN, may_not(req.role, ACTION_ZH.get(action, action), f"{action} here", allowed)
    if s.status in ("signed", "sealed"):
        return CONFLICT, ("事件报告已签发,复盘已结束,案卷已封存 / "
                          "the event report was signed off; the review is closed and the case file sealed")
    return None


RULES: RuleBook[ReviewState | None] = RuleBook("review", before=_open_to_the_role)


def _latest(s: ReviewState) -> ReportInfo | None:
    return s.reports[-1] if s.reports else None


@RULES.rule("summary")
def summary(s: ReviewState, req: SummaryIn, now: datetime) -> Refusal | None:
    if not any(u.unit_id == req.unit_id for u in s.units):
        known = ", ".join(u.unit_id for u in s.units) or "none"
        return INVALID, (f"该单位不是本次复盘的参与单位 / "
                         f"unit_id: {req.unit_id!r} is not a participating unit of this review (units: {known})")
    return None


@RULES.rule("compile")
def compile_report(s: ReviewState, req: Actor, now: datetime) -> Refusal | None:
    latest = _latest(s)
    if s.status == "compiled" and not s.dirty and latest is not None:
        return CONFLICT, (f"第{latest.version}版报告已汇编,此后没有新的总结,等待带班领导签发 / "
                          f"report v{latest.version} is compiled and nothing changed since; it awaits sign-off")
    missing = [u for u in s.units if u.submitted_at is None]
    due = max((u.due_at for u in missing), default=None)
    if missing and due is not None and now < due:
        names = "、".join(u.name for u in missing)
        return CONFLICT, (f"{len(missing)}个单位尚未报送书面总结({names}),报送时限未到:请待其报送或时限过后再汇编 / "
                          f"{len(missing)} unit(s) have not submitted their summary ({names}) and the deadline "
                          f"({due.isoformat()}) has not passed; compile once they have, or after the deadline")
    return None


@RULES.rule("signoff")
def signoff(s: ReviewState, req: SignoffIn, now: datetime) -> Refusal | None:
    latest = _latest(s)
    if latest is None:
        return CONFLICT, "尚无已汇编的报告可签发 / there is no compiled report to sign off"
    if s.status != "compiled":
        why = "was returned" if s.status == "returned" else "is out of date: a summary came in after it was compiled"
        why_zh = "已被退回" if s.status == "returned" else "汇编后又收到单位总结,已过时"
        return CONFLICT, f"第{latest.version}版报告{why_zh},请重新汇编 / report v{latest.version} {why}; compile it again first"
    if req.version is not None and req.version != latest.version:
        return CONFLICT, (f"第{req.version}版不是最新报告(最新为第{latest.version}版) / "
                          f"version {req.version} is not the latest report (v{latest.version})")
    if req.decision == "approve" and not req.lessons.strip():
        return INVALID, ("签发时请填写经验教训和总体评价 / "
                         "lessons: give the lessons and the overall assessment (经验教训) when signing off")
    if req.decision == "return" and not req.comments.strip():
        return INVALID, "退回时请写明修改意见 / comments: say what to change when returning the report"
    return None


def refusal(s: ReviewState, action: str, req: Actor, now: datetime) -> Refusal | None:
    """Why the procedure refuses this step now, as (forbidden | conflict | invalid, reason); None if allowed."""
    return RULES.refusal(action, s, req, now)


def answers_for(s: ReviewState, req: SummaryIn) -> bool:
    """Is the caller the unit's own voice (its head or the head's deputy, with a role the template lets submit)?"""
    ref = next((u for u in s.opened.units if u.id == req.unit_id), None)
    return ref is not None and req.actor in ref.answerers and req.role in s.opened.template.roles.summary


def owner_refusal(s: ReviewState, req: SummaryIn) -> Refusal | None:
    """A unit's summary comes from that unit, or the duty office enters it on the unit's behalf (recorded as such).
    Checked by the update's validator only: units' answerers are known from this version on, and a saved history
    replays its handler without them."""
    if answers_for(s, req):
        return None
    t = s.opened.template
    if req.role in t.roles.on_behalf:
        return None
    ref = next((u for u in s.opened.units if u.id == req.unit_id), None)
    name = ref.name if ref else req.unit_id
    head = (ref.contact if ref else "") or "its head"
    office = ", ".join(t.roles.on_behalf) or "nobody, in this review"
    return FORBIDDEN, (f"非本单位人员不得报送{name}的书面总结 / "
                       f"{req.actor} does not answer for {name} ({req.unit_id}): its summary comes from the unit "
                       f"({head}, or the head's deputy) or is entered on its behalf by the duty office ({office}), "
                       f"not by role {req.role!r}")
