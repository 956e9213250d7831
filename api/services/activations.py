"""Plan activation 分级响应: activate a plan, act in a running response, read its status.

The plan (definitions/plans/) says who may activate at each level; the workflow's update
validators say who may do every later step and in which order. This module turns their
refusals into HTTP answers (403 role or person, 404 unknown item, 409 order, 422 input)
and records every refused step in the activation's audit trail, so a supervisor sees
the attempts too. No database transaction is held while Temporal is called.
"""
from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from pydantic import BaseModel, Field
from temporalio.client import Client
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError

from api.services.dates import DateRange
from api.services.errors import ServiceError
from api.services.steps import Refused, run_step
from config import Settings
from definitions.loader import Library
from definitions.schema.plans import INCIDENT_TOWN, ResponsePlan
from definitions.schema.reporting import Severity
from store import activations as store
from store.db import session_scope
from store.directory import OrgUnit
from store.incidents import Incident
from workflows.activation import (
    CONFLICT,
    FORBIDDEN,
    INVALID,
    NOT_FOUND,
    OPEN,
    ActivationInfo,
    ActivationInput,
    ActivationView,
    PlanActivationWorkflow as W,
    activation_id_of,
    level_zh,
    subject_of,
    workflow_id_of,
)
from workflows.kit.roles import may_not

STATUS = {FORBIDDEN: 403, CONFLICT: 409, INVALID: 422, NOT_FOUND: 404}
UPDATES = {"directive": W.issue_directive, "acknowledge": W.acknowledge, "feedback": W.feedback, "review": W.review_item,
           "level": W.change_level, "terminate": W.terminate, "dispatch": W.draft_dispatch, "consult": W.consult_dispatch,
           "approve": W.decide_dispatch, "reinforce": W.request_reinforcement, "answer": W.answer_reinforcement,
           "acknowledge_person": W.acknowledge_person, "meeting": W.convene_experts, "conclude": W.conclude_meeting}


def experts_of(fields: list[str]) -> list:
    """会商研判: the register's experts of `fields` (in the fields' order, then by id) as the workflow calls them: a
    person of the directory by their id and mobile, an expert with only a mobile as `expert:<id>`. 422 for a field
    not in the list."""
    from sqlmodel import col, select

    from api.console.i18n_resources import RESOURCE_STRINGS
    from definitions.schema.resources import EXPERT_FIELDS
    from store.directory import Person
    from store.resources import Expert
    from workflows.activation.state import InvitedExpert

    unknown = [f for f in fields if f not in EXPERT_FIELDS]
    if unknown:
        raise ActivationError(422, f"fields: 专业领域不在列表中:{'、'.join(unknown)} / unknown field(s) "
                                   f"{', '.join(unknown)} (known: {', '.join(EXPERT_FIELDS)})")
    with session_scope(write=False) as s:
        rows = list(s.exec(select(Expert).where(col(Expert.field).in_(fields)).order_by(col(Expert.id))))
        people = {p.id: p for p in s.exec(select(Person).where(col(Person.id).in_([e.person_id for e in rows if e.person_id])))}
    out = []
    for e in sorted(rows, key=lambda e: (fields.index(e.field), e.id)):
        p = people.get(e.person_id or "")
        mobile = (p.mobile if p else None) or e.mobile
        if not mobile:
            continue
        out.append(InvitedExpert(id=e.id, name=p.name if p else e.name, field=e.field,
                                 field_zh=RESOURCE_STRINGS.get(f"xf_{e.field}", (e.field,))[0],
                                 person_id=p.id if p else f"expert:{e.id}", mobile=mobile))
    return out


class ActivationError(ServiceError):
    """An activation refused to start or take a step."""


class ActivationIn(BaseModel):
    """Activate a response plan for an incident at a level."""

    plan: str = Field(pattern=r"^[a-z][a-z0-9_]*$", max_length=64, description="plan id, e.g. flood_control")
    level: Severity = Field(description="I 特别重大 · II 重大 · III 较大 · IV 一般")
    incident_id: str = Field(min_length=1, max_length=64, description="an incident received through POST /api/incidents")
    reason: str = Field(min_length=1, max_length=2000, description="why: the start condition met")
    town_id: str | None = Field(default=None, max_length=50, description="the incident's town; default: the incident's")


def _incident(incident_id: str, town_id: str | None) -> Incident | None:
    with session_scope(write=False) as s:
        if town_id is not None and ((town := s.get(OrgUnit, town_id)) is None or town.kind != "town"):
            raise ActivationError(422, f"town_id: {town_id!r} is not a town or street in the directory")
        return s.get(Incident, incident_id)


def _commanders(plan: ResponsePlan, level: Severity, town_id: str | None) -> tuple[set[str], str]:
    """Persons who command the level (commander and deputies, with their own deputies), and the commander's label."""
    lv = plan.level(level)
    refs = [lv.commander, *lv.deputies]
    persons: set[str] = set()
    labels = []
    with session_scope(write=False) as s:
        d = store.PostHolders(s, {p.position for p in refs})
        for p in refs:
            h = d.holder(p.key, p.position, town_id if p.org_unit == INCIDENT_TOWN else p.org_unit)
            persons |= {c["person_id"] for c in (h["person"], h["deputy"]) if c}
            labels.append(h["label"])
    return persons, labels[0]


async def start(client: Client, settings: Settings, lib: Library, data: ActivationIn, actor: str,
                role: str, *, warning_id: str | None = None, proposal_id: str | None = None) -> tuple[ActivationView, bool]:
    """Start the activation (one per incident and plan); (its state, whether it was running already).
    `warning_id`, `proposal_id`: the response proposal accepted (workflows/proposal.py), named in its info and
    its `activation.started` event."""
    loaded = lib.response_plan(data.plan)
    if loaded is None:
        known = ", ".join(sorted(lib.of("plans"))) or "none"
        raise ActivationError(422, f"plan: no response plan {data.plan!r} (known: {known})")
    plan: ResponsePlan = loaded.model
    lv = plan.level(data.level)
    if role not in lv.activate:
        raise ActivationError(403, may_not(role, f"启动{plan.name_zh}{level_zh(data.level)}响应",
                                           f"activate {plan.name_zh} at {level_zh(data.level)}", lv.activate))
    incident = await asyncio.to_thread(_incident, data.incident_id, data.town_id)
    if incident is None:
        raise ActivationError(422, f"incident_id: no incident {data.incident_id!r}; receive it first (POST /api/incidents)")
    town = data.town_id or incident.town_id
    if role == "commander":
        persons, label = await asyncio.to_thread(_commanders, plan, data.level, town)
        if actor not in persons:
            raise ActivationError(403, f"{actor} does not command {plan.name_zh} at {level_zh(data.level)} "
                                       f"(指挥长: {label}, or a deputy commander)")
    aid = activation_id_of(incident.id, plan.id)
    wid = workflow_id_of(aid)
    inp = ActivationInput(info=ActivationInfo(activation_id=aid, incident_id=incident.id, incident_title=incident.title,
                                              town_id=town, level=data.level, reason=data.reason, activated_by=actor,
                                              activated_role=role, warning_id=warning_id, proposal_id=proposal_id),
                          plan=plan, plan_version=loaded.version)
    existed = False
    try:  # a response that ended is not restarted under the same id: its audit trail is closed
        await client.start_workflow(W.run, inp, id=wid, task_queue=settings.task_queue,
                                    id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE)
    except WorkflowAlreadyStartedError:
        existed = True
    try:
        view = await client.get_workflow_handle_for(W.run, wid).execute_update(W.opened_view)
    except RPCError as exc:
        if not existed:
            raise
        raise ActivationError(409, f"{plan.name_zh} was activated for {incident.id} before and that response has ended; "
                                   "see GET /api/activations/" + aid) from exc
    return view, existed


# ------------------------------------------------------------------ steps


def find(activation_id: str) -> store.Activation | None:
    with session_scope(write=False) as s:
        return store.get(s, activation_id)


async def step(client: Client, activation_id: str, action: str, req) -> ActivationView:
    """Run one step as an update; a refusal becomes an ActivationError with the procedure's reason."""
    row = await asyncio.to_thread(find, activation_id)
    if row is None:
        raise ActivationError(404, f"no activation {activation_id!r}")
    try:
        return await run_step(client, workflow_id=row.workflow_id, subject=subject_of(row.id),
                              refused_kind="activation.refused", action=action, update=UPDATES[action], req=req,
                              result_type=ActivationView, statuses=STATUS,
                              ended=f"the response {activation_id!r} has ended ({row.status}); nothing more can be done in it")
    except Refused as r:
        raise ActivationError(r.status, r.why) from r


# ------------------------------------------------------------------ reading


def _marks(item: dict, now: datetime) -> dict:
    due = datetime.fromisoformat(item["due_at"])
    overdue = item["state"] in OPEN and now >= due
    return {**item, "overdue": overdue, "seconds_left": None if item["state"] not in OPEN else int((due - now).total_seconds())}


def detail(activation_id: str) -> dict | None:
    now = datetime.now(UTC)
    with session_scope(write=False) as s:
        row = store.get(s, activation_id)
        if row is None:
            return None
        view = dict(row.view)
    view["tasks"] = [_marks(i, now) for i in view.get("tasks", [])]
    view["directives"] = [_marks(i, now) for i in view.get("directives", [])]
    items = [*view["tasks"], *view["directives"]]
    view["summary"] = {"open": sum(i["state"] in OPEN for i in items), "overdue": sum(i["overdue"] for i in items),
                       "reported": sum(i["state"] == "reported" for i in items),
                       "done": sum(i["state"] in ("accepted", "completed") for i in items),
                       "closed": sum(i["state"] == "closed" for i in items),
                       "late": {i["id"]: i["late_by_s"] for i in items if i.get("late_by_s")},
                       "commanders_acknowledged": all(c["state"] == "acknowledged" for c in view.get("commanders", []))}
    return view


def listing(limit: int, status: str | None, incident_id: str | None, *, dates: DateRange | None = None) -> list[dict]:
    """Activations, newest first; `dates`: activated in these local days (api.services.dates)."""
    now = datetime.now(UTC)
    with session_scope(write=False) as s:
        rows = store.listing(s, limit, status, incident_id, dates=dates)
        items = store.open_items(s, [r.id for r in rows])
    out = []
    for r in rows:
        mine = [i for i in items if i.activation_id == r.id]
        cmd = next((c for c in r.view.get("commanders", []) if "指挥长" in c.get("roles", [])), None)
        out.append({"id": r.id, "incident_id": r.incident_id, "plan_id": r.plan_id, "plan_name": r.plan_name,
                    "level": r.level, "level_name": r.view.get("level_name"), "status": r.status,
                    "activated_at": r.activated_at.isoformat(), "terminated_at": r.terminated_at.isoformat()
                    if r.terminated_at else None,
                    "commander": cmd and {"label": cmd["label"], "state": cmd["state"]},
                    "open": sum(i.state in OPEN for i in mine),
                    "overdue": sum(1 for i in mine if i.state in OPEN and now >= i.due_at)})
    return out


def valid_filter(name: str, value: str | None, allowed: tuple[str, ...]) -> None:
    if value is not None and value not in allowed:
        raise ActivationError(422, f"{name}: must be one of {', '.join(allowed)}")


# ------------------------------------------------------------------ choosing a level


def start_conditions(plans: dict[str, ResponsePlan]) -> dict[str, dict[str, dict[str, str]]]:
    """Each plan's levels with their name and 启动条件, as the activation form shows them when chosen."""
    return {pid: {lv.value: {"name": level.name_zh or level_zh(lv), "condition": level.start_condition_zh}
                  for lv, level in sorted(p.levels.items(), key=lambda kv: list(Severity).index(kv[0]))}
            for pid, p in plans.items()}


def proposals(plans: dict[str, ResponsePlan], incidents: list[dict]) -> dict[str, dict[str, str]]:
    """The level an incident meets per plan: a plan of the incident's category whose keywords it names (or
    the only plan of that category) proposes the level of the incident's grade (its start condition: 发生
    一般/较大/重大/特别重大…). Proposed, never chosen: the person activating decides."""
    out: dict[str, dict[str, str]] = {}
    for inc in incidents:
        same = {pid: p for pid, p in plans.items() if p.category == inc.get("category")}
        text = f"{inc.get('title') or ''} {inc.get('subtype') or ''}"
        named = {pid for pid, p in same.items() if any(k and k in text for k in p.events)}
        chosen = named or (set(same) if len(same) == 1 else set())
        if inc.get("severity") in {s.value for s in Severity}:
            out[inc["id"]] = {pid: inc["severity"] for pid in sorted(chosen)}
    return out
