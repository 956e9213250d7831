"""What an activation shows (its read model, written with every activity; `GET /api/activations/{id}`):
the seats of its level and who answered, its working groups, its work, its dispatch orders. Pure: built
from the plan and the state."""
from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from definitions.schema.plans import ResponsePlan
    from definitions.schema.reporting import Severity
    from workflows.activation.messages import (
        ActivationInfo, ActivationView, DispatchView, GroupView, OrderView, SeatView, subject_of)
    from workflows.activation.state import ActivationState, level_zh
    from workflows.kit.episodes import Episode


def seats_of(plan: ResponsePlan, level: Severity) -> dict[str, list[str]]:
    """The posts a level convenes and the roles each is called for: commander, deputies, HQ, group leads."""
    lv = plan.level(level)
    seats: dict[str, list[str]] = {}
    seats.setdefault(lv.commander.key, []).append("指挥长")
    for p in lv.deputies:
        seats.setdefault(p.key, []).append("副指挥长")
    for p in lv.hq:
        seats.setdefault(p.key, []).append("指挥部成员")
    for gid in lv.groups:
        seats.setdefault(plan.group(gid).lead.key, []).append(f"{plan.group(gid).name_zh}组长")
    return seats


def _episode(s: ActivationState, name: str) -> Episode | None:
    return next((e for e in s.episodes if e.name == name), None)


def _seats(plan: ResponsePlan, s: ActivationState, convene: Episode | None) -> list[SeatView]:
    out = []
    for key, roles in seats_of(plan, s.level).items():
        h = s.holders.get(key)
        ts = convene.esc.targets.get(key) if convene else None
        out.append(SeatView(post=key, roles=roles, label=h.label if h else key,
                            person_id=h.person.person_id if h and h.person else None,
                            name=h.person.name if h and h.person else None, state=ts.state if ts else "nobody",
                            acknowledged_at=ts.acknowledged_at if ts else None, acknowledged_by=ts.ack_by if ts else None,
                            escalated=bool(ts and len(ts.recipients) > 1)))
    return out


def _groups(plan: ResponsePlan, s: ActivationState, convene: Episode | None) -> list[GroupView]:
    active = plan.level(s.level).groups
    out = []
    for g in plan.groups:
        h = s.holders.get(g.lead.key)
        ts = convene.esc.targets.get(g.lead.key) if convene and g.id in active else None
        out.append(GroupView(id=g.id, name_zh=g.name_zh, active=g.id in active, lead=h.label if h else g.lead.key,
                             lead_person_id=h.person.person_id if h and h.person else None,
                             lead_state=ts.state if ts else None,
                             members=[(s.holders[m.key].label if m.key in s.holders else m.key) for m in g.members],
                             tasks=[i.id for i in s.items if i.group == g.id and i.kind == "task"]))
    return out


def _dispatches(plan: ResponsePlan, s: ActivationState) -> list[DispatchView]:
    out = []
    for d in s.dispatches:
        ep = _episode(s, f"orders/{d.seq}") if d.state == "approved" else None
        orders = []
        for fid in d.forces if ep else []:
            ts = ep.esc.targets.get(f"force/{fid}") if ep else None
            orders.append(OrderView(force=fid, name_zh=next(f for f in plan.dispatch.forces if f.id == fid).name_zh,
                                    person_id=ts.target.person.person_id if ts else None,
                                    state=ts.state if ts else "nobody", acknowledged_at=ts.acknowledged_at if ts else None))
        for t in d.teams if ep else []:  # register teams (resources 应急资源)
            ts = ep.esc.targets.get(f"team/{t.id}") if ep else None
            orders.append(OrderView(force=f"team:{t.id}", name_zh=t.name, person_id=ts.target.person.person_id if ts else None,
                                    state=ts.state if ts else "nobody", acknowledged_at=ts.acknowledged_at if ts else None))
        out.append(DispatchView(**d.model_dump(), orders=orders))
    return out


def build_view(plan: ResponsePlan, plan_version: str, info: ActivationInfo, s: ActivationState,
               workflow_id: str) -> ActivationView:
    convene = next((e for e in reversed(s.episodes) if e.kind == "convene"), None)
    seats = _seats(plan, s, convene)
    lv = plan.level(s.level)
    return ActivationView(
        activation_id=info.activation_id, workflow_id=workflow_id, subject=subject_of(info.activation_id),
        incident_id=info.incident_id, incident_title=info.incident_title, town_id=info.town_id, plan_id=plan.id,
        plan_name=plan.name_zh, team_kinds=plan.dispatch.team_kinds,
        plan_version=plan_version, level=s.level, level_name=lv.name_zh or level_zh(s.level),
        status="terminated" if s.terminated_at else "active", reason=info.reason,
        activated_by=info.activated_by, activated_at=s.activated_at, levels=s.levels,
        commanders=[x for x in seats if {"指挥长", "副指挥长"} & set(x.roles)], seats=seats,
        groups=_groups(plan, s, convene), tasks=[i for i in s.items if i.kind == "task"],
        directives=[i for i in s.items if i.kind == "directive"], dispatches=_dispatches(plan, s),
        reinforcements=s.reinforcements, meetings=s.meetings, gaps=s.gaps, units=sorted(s.units), terminated_at=s.terminated_at,
        terminated_by=s.terminated_by, termination_reason=s.termination_reason,
        review_workflow_id=s.review_workflow_id, runs=s.runs)


def opening(plan: ResponsePlan, plan_version: str, info: ActivationInfo, s: ActivationState) -> dict:
    """The payload of `activation.started`."""
    lv = plan.level(s.level)
    return {**info.model_dump(mode="json", exclude={"activated_by"}), "plan": plan.id, "plan_name": plan.name_zh,
            "plan_version": plan_version, "level_name": lv.name_zh, "start_condition": lv.start_condition_zh,
            "commander": s.holders[lv.commander.key].label if lv.commander.key in s.holders else None}
