"""The work order's rules of order, one rule per step: 分拨 → 签收 (or 退回 → 改派) → 反馈 → 办结 → 审核 (办结 or
退回重办) → 回访. Every step first passes `before`: the rules' role for it, and an order not yet ended. The unit's
steps also check the object: only a person of THE unit the order is assigned to (or the duty office, recorded as
代录) may sign, return, give feedback or complete it. Unit-tested in tests/unit/test_workorder_rules.py."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from temporalio import workflow

from workflows.common import CONFLICT, FORBIDDEN, INVALID, Actor
from workflows.kit.roles import may_not
from workflows.kit.rules import Refusal, RuleBook

with workflow.unsafe.imports_passed_through():
    from definitions.schema.workorders import WorkOrderRules
    from workflows.workorder.models import (STATUS_ZH, AssignIn, CloseIn, IncidentLinkIn, SatisfactionIn,
                                            WorkOrderInfo, WorkOrderState)

ROLE_OF = {"assign": "assign", "sign": "unit", "return": "unit", "feedback": "unit", "complete": "unit",
           "close": "close", "satisfaction": "close", "incident": "incident"}
ACTION_ZH = {"assign": "分拨工单", "sign": "签收工单", "return": "退回工单", "feedback": "填报办理反馈",
             "complete": "办结工单", "close": "审核工单", "satisfaction": "登记回访结果", "incident": "将工单转为突发事件"}
UNIT_STEPS = ("sign", "return", "feedback", "complete")
HOTLINE = "hotline"  # the role of the hotline platform's signed webhook (api/routes/webhooks_hotline.py)


@dataclass
class Order:
    """What a step is judged against: the order's state, its rules and what was received."""

    s: WorkOrderState
    rules: WorkOrderRules
    info: WorkOrderInfo


def _before(o: Order, action: str, req: Actor, now: datetime) -> Refusal | None:
    allowed = list(getattr(o.rules.roles, ROLE_OF[action]))
    if action in UNIT_STEPS:
        allowed += [r for r in o.rules.roles.on_behalf if r not in allowed]
    if action == "satisfaction":
        allowed.append(HOTLINE)  # the platform's signed webhook answers the 回访
    if req.role not in allowed:
        return FORBIDDEN, may_not(req.role, ACTION_ZH[action], f"{action} a work order", allowed)
    if o.s.ended_at is not None:
        return CONFLICT, f"工单已回访结束 / the work order ended at {o.s.ended_at.isoformat()}"
    if action in UNIT_STEPS:
        a = o.s.current
        if a is None or o.s.status in ("received", "returned"):
            return CONFLICT, (f"工单当前{STATUS_ZH[o.s.status]},尚未分拨给任何单位 / the work order is not assigned to a "
                              f"unit now ({o.s.status})")
        if req.actor not in a.answerers and req.role not in o.rules.roles.on_behalf:
            return FORBIDDEN, (f"非{a.unit_name}人员不得{ACTION_ZH[action]} / {req.actor} is not a person of "
                               f"{a.unit_name} ({a.unit_id}), to which this work order is assigned; the unit's persons "
                               f"or the duty office on its behalf ({', '.join(o.rules.roles.on_behalf)}) may")
    return None


RULES: RuleBook[Order] = RuleBook("workorder", before=_before)


def acts_for_unit(o: Order, req: Actor) -> bool:
    """Is the caller a person of the assigned unit (not the duty office on its behalf)?"""
    a = o.s.current
    return a is not None and req.actor in a.answerers


@RULES.rule("assign")
def assign(o: Order, req: AssignIn, now: datetime) -> Refusal | None:
    if o.s.status not in ("received", "returned", "assigned"):
        return CONFLICT, (f"工单当前{STATUS_ZH[o.s.status]},不能再分拨 / the work order is {o.s.status}: it is assigned "
                          "and signed for; it can no longer be reassigned")
    a = o.s.current
    if a is not None and o.s.status == "assigned" and a.unit_id == req.unit_id:
        return CONFLICT, f"工单已分拨给{a.unit_name} / the work order is assigned to {req.unit_id} already"
    if a is not None and o.s.status == "returned" and a.unit_id == req.unit_id:
        return INVALID, (f"{a.unit_name}已退回此工单(理由:{a.return_reason}),请改派其他单位 / unit_id: {req.unit_id} "
                         "returned this work order; assign it to another unit")
    return None


@RULES.rule("sign")
def sign(o: Order, req: Actor, now: datetime) -> Refusal | None:
    a = o.s.current
    if a.signed_at is not None:
        return CONFLICT, f"工单已于{a.signed_at.isoformat()}签收 / signed for already by {a.signed_by}"
    return None


@RULES.rule("return")
def return_(o: Order, req: Actor, now: datetime) -> Refusal | None:
    if o.s.status not in ("assigned", "signed"):
        return CONFLICT, (f"工单当前{STATUS_ZH[o.s.status]},不能退回 / the work order is {o.s.status}: only an order "
                          "not yet completed can be returned")
    if o.s.feedback:
        return CONFLICT, "已有办理反馈,不能退回 / feedback was given already: the unit handles it"
    return None


@RULES.rule("feedback")
def feedback(o: Order, req: Actor, now: datetime) -> Refusal | None:
    if o.s.status not in ("assigned", "signed", "sent_back"):
        return CONFLICT, f"工单当前{STATUS_ZH[o.s.status]},不能反馈 / the work order is {o.s.status}"
    return None


@RULES.rule("complete")
def complete(o: Order, req: Actor, now: datetime) -> Refusal | None:
    if o.s.status not in ("assigned", "signed", "sent_back"):
        return CONFLICT, f"工单当前{STATUS_ZH[o.s.status]},不能办结 / the work order is {o.s.status}"
    return None


@RULES.rule("close")
def close(o: Order, req: CloseIn, now: datetime) -> Refusal | None:
    if o.s.status != "completed":
        return CONFLICT, (f"工单当前{STATUS_ZH[o.s.status]},单位办结后方可审核 / the work order is {o.s.status}: it is "
                          "checked once the unit reports it completed")
    if req.decision == "send_back" and not req.reason.strip():
        return INVALID, "退回重办时请写明理由 / reason: say why it is sent back"
    return None


@RULES.rule("satisfaction")
def satisfaction(o: Order, req: SatisfactionIn, now: datetime) -> Refusal | None:
    if o.s.status != "closed" or not o.s.visits:
        return CONFLICT, f"工单当前{STATUS_ZH[o.s.status]},审核办结后方可回访 / the work order is {o.s.status}"
    v = o.s.visits[-1]
    if v.posted_at is None:
        return CONFLICT, ("办理结果尚未推送至热线平台,请稍后再登记回访 / the result is not on the hotline platform yet "
                          "(being posted); try again shortly")
    if req.version is not None and req.version != v.version:
        return CONFLICT, f"回访版本{req.version}不是最新(第{v.version}版) / version {req.version} is not the latest ({v.version})"
    if v.satisfaction is not None:
        return CONFLICT, f"回访结果已登记:{v.satisfaction} / the satisfaction was recorded already"
    return None


@RULES.rule("incident")
def incident(o: Order, req: IncidentLinkIn, now: datetime) -> Refusal | None:
    if o.s.incident_id is not None:
        return CONFLICT, f"工单已转为突发事件{o.s.incident_id} / the work order became incident {o.s.incident_id} already"
    return None


def refusal(o: Order, action: str, req: Actor, now: datetime) -> Refusal | None:
    return RULES.refusal(action, o, req, now)
