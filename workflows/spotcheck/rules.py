"""The spot check's rules of order: an answer (while it calls, and while it closes: recorded late) from the
person asked, or by phone from a duty officer; a follow-up resolved by the town's responsible person or a
duty officer. Every step first passes `before`: the check is calling and not over. Unit-tested in
tests/unit/test_spotcheck_rules.py."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from temporalio import workflow

from workflows.common import CONFLICT, FORBIDDEN, INVALID, Actor
from workflows.kit.roles import may_not, role_list, role_name
from workflows.kit.rules import Refusal, RuleBook

with workflow.unsafe.imports_passed_through():
    from workflows.spotcheck.models import AnswerIn, FollowupView, PersonView, ResolveIn, SpotCheckView

DUTY_ROLES = ("duty_staff", "duty_cadre", "duty_chief", "leading_leader", "admin")
# a spot check no longer recording, as the duty office says it
CHECK_ZH = {"closing": "正在结束", "closed": "已结束", "skipped": "未开展"}


@dataclass
class Check:
    """What a step is judged against: the check as it shows, whether it is closing, its questions, its follow-ups."""

    v: SpotCheckView
    closing: bool
    question_ids: list[str]
    followups: dict[str, FollowupView]


def answer_refusal(question_ids: list[str], p: PersonView | None, req: AnswerIn) -> Refusal | None:
    """Why an answer for `p` (None: not sampled) cannot be taken, or None. Shared by the workflow and by the
    store, which records answers given after the check ended (api/services/duty/)."""
    if p is None:
        return INVALID, f"该人员不在本次抽查名单中 / person_id: {req.person_id!r} is not in this spot check's sample"
    if req.channel == "phone" and req.role not in DUTY_ROLES:
        return FORBIDDEN, may_not(req.role, "登记电话核实的答复", "record answers taken by phone",
                                  [r for r in DUTY_ROLES if r != "admin"])
    if req.channel != "phone" and req.actor != req.person_id:
        return FORBIDDEN, "语音或表单答复须由被抽查人本人作出 / an answer by voice or form comes from the person asked"
    missing = [i for i in question_ids if i not in req.answers]
    unknown = [k for k in req.answers if k not in question_ids]
    if missing or unknown:
        return INVALID, ("请对每个问题逐一回答是或否 / "
                         f"answers: give yes/no for each of {', '.join(question_ids)}"
                         + (f"; missing {', '.join(missing)}" if missing else "")
                         + (f"; unknown {', '.join(unknown)}" if unknown else ""))
    if p.answers is not None:
        return CONFLICT, (f"{p.name}已于此前作答,无需重复登记 / "
                          f"{p.name} answered already "
                          f"({p.channel}, {p.answered_at.isoformat() if p.answered_at else '?'})")
    return None


def _calling(c: Check, action: str, req: Actor, now: datetime) -> Refusal | None:
    v = c.v
    if v.status in ("closed", "skipped") or (c.closing and action != "answer"):
        status = "closing" if v.status == "running" else v.status
        return CONFLICT, (f"本次抽查{CHECK_ZH.get(status, status)},不再登记 / "
                          f"the spot check is {status}; nothing more is recorded")
    if v.status == "waiting":
        return CONFLICT, "本次抽查尚未开始呼叫 / the spot check has not started calling yet"
    return None


RULES: RuleBook[Check] = RuleBook("spotcheck", before=_calling)


@RULES.rule("answer")
def answer(c: Check, req: AnswerIn, now: datetime) -> Refusal | None:
    """(while closing too: recorded late)"""
    p = next((x for x in c.v.persons if x.person_id == req.person_id), None)
    return answer_refusal(c.question_ids, p, req)


@RULES.rule("resolve")
def resolve(c: Check, req: ResolveIn, now: datetime) -> Refusal | None:
    f = c.followups.get(req.key)
    if f is None:
        return INVALID, (f"没有整改事项{req.key} / "
                         f"key: no follow-up {req.key!r} (open: {', '.join(c.followups) or 'none'})")
    if f.status == "resolved":
        return CONFLICT, (f"整改事项{req.key}已于此前办结,无需重复办理 / "
                          f"the follow-up {req.key} was resolved already by {f.resolved_by}")
    if req.role not in DUTY_ROLES and req.actor != f.responsible_id:
        return FORBIDDEN, (f"{role_name(req.role)}不能处理此整改事项;可由该乡镇责任人或值班室({role_list(DUTY_ROLES[:-1])})办理"
                           f" / role {req.role!r} may not resolve a follow-up; the town's responsible person or a duty officer does")
    return None
