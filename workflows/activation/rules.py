"""An activation's rules of order, one rule per step: who may act, on what, in which order. Every step
first passes `before` (nothing more happens in a terminated response). Unit-tested without a server in
tests/unit/test_activation_rules.py; the update validators raise them (workflows/kit/rules.py)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from temporalio import workflow

from workflows.common import CONFLICT, FORBIDDEN, INVALID, NOT_FOUND
from workflows.kit.roles import may_not, role_list
from workflows.kit.rules import Refusal, RuleBook

with workflow.unsafe.imports_passed_through():
    from definitions.schema.plans import ResponsePlan
    from definitions.schema.reporting import Severity
    from workflows.activation.messages import (
        Actor, ConclusionIn, ConsultIn, DirectiveIn, ExpertMeetingIn, DispatchDecisionIn, DispatchIn, FeedbackIn, ItemIn, ItemReviewIn, LevelIn,
        PersonAckIn, ReinforceAnswerIn)
    from workflows.activation.state import STATE_ZH, ActivationState, Item, level_zh


@dataclass
class Activation:
    """What a step is judged against: the plan and the activation's state."""

    plan: ResponsePlan
    s: ActivationState

    def commanders(self, level: Severity) -> set[str]:
        lv = self.plan.level(level)
        out: set[str] = set()
        for p in (lv.commander, *lv.deputies):
            out |= self.holder_persons(p.key)
        return out

    def holder_persons(self, post_key: str) -> set[str]:
        h = self.s.holders.get(post_key)
        return h.persons() if h else set()

    def label(self, post_key: str) -> str:
        h = self.s.holders.get(post_key)
        return h.label if h else post_key

    def item(self, item_id: str) -> Item | None:
        return next((i for i in self.s.items if i.id == item_id), None)

    # --------------------------------------------------------------- the checks steps share

    def role(self, allowed: list[str], req: Actor, what: str, what_zh: str) -> Refusal | None:
        if req.role not in allowed:
            return FORBIDDEN, may_not(req.role, what_zh, what, allowed)
        return None

    def commander(self, req: Actor, levels: list[Severity], what: str, what_zh: str) -> Refusal | None:
        if req.role == "commander" and not any(req.actor in self.commanders(lv) for lv in levels):
            names = ", ".join(f"{level_zh(lv)}指挥长/副指挥长" for lv in levels)
            return FORBIDDEN, (f"您不是本次响应的{'或'.join(f'{level_zh(lv)}指挥长、副指挥长' for lv in levels)},不能{what_zh}"
                               f" / {req.actor} is not {names} of this activation and may not {what}")
        return None

    def directing(self, req: Actor, what: str, what_zh: str) -> Refusal | None:
        """The plan's directing roles, and a commander of this level."""
        return self.role(self.plan.roles.direct, req, what, what_zh) or self.commander(req, [self.s.level], what, what_zh)

    def acting_for(self, req: Actor, persons: set[str], whose: str, need_note: bool) -> Refusal | None:
        """The one rule for acting in someone's name (an item's assignee, a person called): they themselves,
        or the plan's proxy roles (the duty office), who say how the person confirmed."""
        if req.actor in persons:
            return None
        if req.role not in self.plan.roles.proxy:
            return FORBIDDEN, (f"只有值班室({role_list(self.plan.roles.proxy)})可以代为确认 / "
                               f"{req.actor} is not {whose}; only the duty office ({', '.join(self.plan.roles.proxy)}) "
                               f"may act for them, not role {req.role!r}")
        if need_note and not (req.note or "").strip():
            return INVALID, "代为确认时,请在备注中写明本人如何确认 / note: acting for someone, say how they confirmed (e.g. 电话确认已收到)"
        return None

    def live_item(self, req: ItemIn) -> tuple[Item | None, Refusal | None]:
        item = self.item(req.item_id)
        if item is None:
            return None, (NOT_FOUND, f"本次响应中没有任务或指令{req.item_id} / "
                                     f"no task or directive {req.item_id!r} in this activation")
        if item.state == "closed":
            return None, (CONFLICT, f"{item.id}已关闭,不能再办理 / {item.id} was closed ({item.closed_reason})")
        return item, None

    def assignee_acting(self, req: ItemIn, need_note: bool) -> tuple[Item | None, Refusal | None]:
        """An item still open, and the assignee (or the duty office for them) acting on it."""
        item, why = self.live_item(req)
        if item is None:
            return None, why
        why = self.acting_for(req, item.assignee.persons(), f"the assignee of {item.id} ({item.assignee.label})", need_note)
        return (None, why) if why else (item, None)


# a dispatch plan's state, as the duty office says it
DISPATCH_ZH = {"consulting": "待会商", "drafted": "待审批", "returned": "已退回", "approved": "已批准", "closed": "已关闭"}


def _still_running(c: Activation, action: str, req: Actor, now: datetime) -> Refusal | None:
    if c.s.terminated_at is not None:
        return CONFLICT, ("本次响应已终止,不能再办理任何事项 / "
                          f"the response was terminated at {c.s.terminated_at.isoformat()} by {c.s.terminated_by}; "
                          "nothing more can be done in it")
    return None


RULES: RuleBook[Activation] = RuleBook("activation", before=_still_running)


# ----------------------------------------------------------------- directives and tasks (督办)


@RULES.rule("directive")
def directive(c: Activation, req: DirectiveIn, now: datetime) -> Refusal | None:
    if why := c.directing(req, "issue directives", "下达督办指令"):
        return why
    if (req.due_at is None) == (req.due_in is None):
        return INVALID, ("请给出办理时限:截止时间或办理时长,二者选一 / "
                         "give the time limit as due_at (a time) or due_in (like 2h), one of them")
    due = req.due_at if req.due_at is not None else now + (req.due_in or timedelta(0))
    if due.tzinfo is None:
        return INVALID, "截止时间须注明时区 / due_at: give a time zone, e.g. 2026-07-01T18:00:00+08:00"
    if due <= now:
        return INVALID, "办理时限须晚于当前时间 / due_at: the time limit must be in the future"
    if due > now + timedelta(days=30):
        return INVALID, "办理时限最长为30天 / due_at: at most 30 days ahead"
    if req.assignee.startswith("group:"):
        gid = req.assignee.split(":", 1)[1]
        active = c.plan.level(c.s.level).groups
        if gid not in active:
            return INVALID, (f"{gid}不是{level_zh(c.s.level)}响应启动的工作组,不能作为承办单位 / "
                             f"assignee: {gid!r} is not a working group started at {level_zh(c.s.level)} "
                             f"(active: {', '.join(active)})")
    return None


@RULES.rule("acknowledge")
def acknowledge(c: Activation, req: ItemIn, now: datetime) -> Refusal | None:
    item, why = c.assignee_acting(req, need_note=True)
    if item is None:
        return why
    if item.acknowledged_at is not None:
        return CONFLICT, (f"{item.id}已于此前签收,无需重复签收 / "
                          f"{item.id} was acknowledged already at {item.acknowledged_at.isoformat()} "
                          f"by {item.acknowledged_by}")
    return None


@RULES.rule("feedback")
def feedback(c: Activation, req: FeedbackIn, now: datetime) -> Refusal | None:
    item, why = c.assignee_acting(req, need_note=False)
    if item is None:
        return why
    if item.state in ("accepted", "completed"):
        return CONFLICT, (f"{item.id}{STATE_ZH[item.state]},无需再反馈 / "
                          f"{item.id} is done ({STATE_ZH[item.state]}); nothing more to feed back")
    if item.state == "reported":
        return CONFLICT, (f"{item.id}已报完成,待指挥长验收或退回 / "
                          f"{item.id} was reported done and awaits the commander's decision (accept or return)")
    return None


@RULES.rule("review")
def review(c: Activation, req: ItemReviewIn, now: datetime) -> Refusal | None:
    item, why = c.live_item(req)
    if item is None:
        return why
    if why := c.directing(req, "accept or return work", "验收或退回任务"):
        return why
    if item.state != "reported":
        return CONFLICT, (f"{item.id}{STATE_ZH[item.state]},只有已报完成的事项才能验收或退回 / "
                          f"{item.id} is {item.state} ({STATE_ZH[item.state]}): "
                          "only work reported done can be accepted or returned")
    if req.decision == "return" and not req.comments.strip():
        return INVALID, "退回时请写明欠缺或需补充的内容 / comments: say what is missing when returning work"
    return None


@RULES.rule("acknowledge_person")
def acknowledge_person(c: Activation, req: PersonAckIn, now: datetime) -> Refusal | None:
    if not any(req.person_id in ts.recipients for ep in c.s.episodes for ts in ep.esc.targets.values()):
        return NOT_FOUND, f"本次响应未呼叫过该人员 / nobody with id {req.person_id!r} was called in this response"
    return c.acting_for(req, {req.person_id}, req.person_id, need_note=True)


# ----------------------------------------------------------------- levels and termination


@RULES.rule("level")
def level(c: Activation, req: LevelIn, now: datetime) -> Refusal | None:
    if req.level == c.s.level:
        return CONFLICT, f"当前已是{level_zh(c.s.level)}响应 / the response is at {level_zh(c.s.level)} already"
    return (c.role(c.plan.roles.change_level, req, "change the response level", "调整响应级别")
            or c.role(c.plan.level(req.level).activate, req, f"raise or set the response to {level_zh(req.level)}",
                      f"将响应调整为{level_zh(req.level)}")
            or c.commander(req, [c.s.level, req.level], "change the response level", "调整响应级别"))


@RULES.rule("terminate")
def terminate(c: Activation, req: Actor, now: datetime) -> Refusal | None:
    return (c.role(c.plan.level(c.s.level).terminate, req, f"terminate a {level_zh(c.s.level)} response",
                   f"终止{level_zh(c.s.level)}响应")
            or c.commander(req, [c.s.level], "terminate the response", "终止响应"))


# ----------------------------------------------------------------- force dispatch 力量调度


@RULES.rule("dispatch")
def dispatch(c: Activation, req: DispatchIn, now: datetime) -> Refusal | None:
    d = c.plan.dispatch
    if req.actor not in c.holder_persons(d.drafter.key) and req.role not in c.plan.roles.proxy:
        return FORBIDDEN, (f"调度方案由消防救援({c.label(d.drafter.key)})拟定,您不能拟定 / "
                           f"the dispatch plan is drafted by fire rescue ({c.label(d.drafter.key)}); "
                           f"{req.actor} is not them")
    known = {f.id for f in d.forces}
    unknown = [f for f in req.forces if f not in known]
    if unknown:
        return INVALID, (f"预案中没有这些力量:{'、'.join(unknown)} / "
                         f"forces: unknown {', '.join(unknown)} (the plan has {', '.join(sorted(known))})")
    if len(set(req.forces)) != len(req.forces):
        return INVALID, "每支力量只能列一次 / forces: each force once"
    if not req.forces and not req.teams:
        return INVALID, "请列出出动力量或应急资源库中的队伍 / forces, teams: name at least one force or register team"
    if len(set(req.teams)) != len(req.teams):
        return INVALID, "每支队伍只能列一次 / teams: each team once"
    last = c.s.dispatches[-1] if c.s.dispatches else None
    if last is not None and last.state in ("consulting", "drafted"):
        return CONFLICT, (f"第{last.seq}号调度方案{DISPATCH_ZH[last.state]},办结后方可拟定新方案 / "
                          f"dispatch plan {last.seq} awaits "
                          f"{'consultation' if last.state == 'consulting' else 'approval'}")
    return None


@RULES.rule("consult")
def consult(c: Activation, req: ConsultIn, now: datetime) -> Refusal | None:
    d = next((x for x in c.s.dispatches if x.seq == req.seq), None)
    if d is None:
        return NOT_FOUND, f"没有第{req.seq}号调度方案 / no dispatch plan {req.seq}"
    approver, sector_key = c.plan.dispatch.approver.key, c.plan.dispatch.sector.key
    sector, em = req.actor in c.holder_persons(sector_key), req.actor in c.holder_persons(approver)
    if not sector and not em:
        return FORBIDDEN, (f"会商由应急管理部门({c.label(approver)})与行业主管部门({c.label(sector_key)})进行,"
                           "您不是其中一方 / "
                           f"the consultation is between emergency management ({c.label(approver)}) and the "
                           f"sector department ({c.label(sector_key)}); {req.actor} is neither")
    if em and not sector and not (req.note or "").strip():
        return INVALID, ("代为登记行业主管部门意见时,请在备注中写明由谁、以何种方式给出 / "
                         "note: recording the sector department's opinion, say who gave it and how")
    if d.state != "consulting":
        return CONFLICT, (f"第{d.seq}号调度方案{DISPATCH_ZH[d.state]},不在会商阶段 / "
                          f"dispatch plan {d.seq} is {d.state}; it does not await consultation")
    return None


@RULES.rule("approve")
def approve(c: Activation, req: DispatchDecisionIn, now: datetime) -> Refusal | None:
    d = next((x for x in c.s.dispatches if x.seq == req.seq), None)
    if d is None:
        return NOT_FOUND, f"没有第{req.seq}号调度方案 / no dispatch plan {req.seq}"
    approver = c.plan.dispatch.approver.key
    if req.actor not in c.holder_persons(approver):
        return FORBIDDEN, (f"调度方案由应急管理部门({c.label(approver)})审批 / "
                           f"dispatch plans are approved by emergency management ({c.label(approver)})")
    if d.state == "consulting":
        season = d.season.label() if d.season else "特殊时期"
        return CONFLICT, (f"{season}: 须由应急管理部门会商行业主管部门({c.label(c.plan.dispatch.sector.key)})"
                          f"同意后方可下达出动指令 / in this special period the sector department must agree "
                          f"before dispatch plan {d.seq} can be approved")
    if d.state != "drafted":
        return CONFLICT, (f"第{d.seq}号调度方案{DISPATCH_ZH[d.state]},只有待审批的方案才能批准或退回 / "
                          f"dispatch plan {d.seq} is {d.state}; only a drafted plan can be approved or returned")
    if req.decision == "return" and not req.comments.strip():
        return INVALID, "退回调度方案时请写明修改意见 / comments: say what to change when returning a dispatch plan"
    return None


# ----------------------------------------------------------------- reinforcement from the city


@RULES.rule("reinforce")
def reinforce(c: Activation, req: Actor, now: datetime) -> Refusal | None:
    return c.role(c.plan.roles.reinforce, req, "request reinforcement", "请求市级增援") or c.commander(
        req, [c.s.level], "request reinforcement", "请求市级增援")


@RULES.rule("answer")
def answer(c: Activation, req: ReinforceAnswerIn, now: datetime) -> Refusal | None:
    if why := c.role(c.plan.roles.record_answer, req, "record the city's answer", "登记市级答复"):
        return why
    r = next((x for x in c.s.reinforcements if x.seq == req.seq), None)
    if r is None:
        return NOT_FOUND, f"没有第{req.seq}号增援请求 / no reinforcement request {req.seq}"
    if r.state != "requested":
        return CONFLICT, (f"第{r.seq}号增援请求已答复,无需重复登记 / "
                          f"reinforcement request {r.seq} was answered already "
                          f"({r.answer.decision if r.answer else r.state})")
    return None


# ----------------------------------------------------------------- 会商研判: experts convened


MEETING_ROLES = ("duty_staff", "duty_cadre", "duty_chief", "leading_leader", "commander")
"""The duty office, the leading leader and a commander of this level convene experts and record conclusions."""


def _meeting_role(c: Activation, req: Actor, what: str, what_zh: str) -> Refusal | None:
    return c.role(list(MEETING_ROLES), req, what, what_zh) or c.commander(req, [c.s.level], what, what_zh)


@RULES.rule("meeting")
def meeting(c: Activation, req: ExpertMeetingIn, now: datetime) -> Refusal | None:
    if why := _meeting_role(c, req, "convene experts", "召集专家会商研判"):
        return why
    if req.at.tzinfo is None:
        return INVALID, "at: 会商时间须带时区 / the meeting's time needs a time zone (e.g. 2026-07-01T15:00:00+08:00)"
    if not req.experts:
        return INVALID, (f"应急资源库中没有{'、'.join(req.fields)}领域的专家 / no expert of the register in "
                         f"{', '.join(req.fields)}")
    return None


@RULES.rule("conclude")
def conclude(c: Activation, req: ConclusionIn, now: datetime) -> Refusal | None:
    if why := _meeting_role(c, req, "record a meeting's conclusions", "登记会商研判结论"):
        return why
    m = next((x for x in c.s.meetings if x.seq == req.seq), None)
    if m is None:
        return NOT_FOUND, f"没有第{req.seq}次会商研判 / no expert meeting {req.seq} in this activation"
    unknown = sorted(set(req.present) - {e.id for e in m.experts})
    if unknown:
        return INVALID, (f"present: 这些专家未受邀参加第{m.seq}次会商:{'、'.join(unknown)} / experts not invited "
                         f"to meeting {m.seq}: {', '.join(unknown)}")
    return None


def refusal(plan: ResponsePlan, s: ActivationState, action: str, req: Actor, now: datetime) -> Refusal | None:
    """Why the activation refuses this step now, as (forbidden | conflict | invalid | not_found, reason); None if allowed."""
    return RULES.refusal(action, Activation(plan, s), req, now)
