"""Hotline work orders 工单: intake (REST and the platform's signed webhook), the steps, reading, and a work order
turned into an incident. The workflow's validators decide who may take which step on which order; this module
checks the directory (an unknown unit is 422 with the reason), turns refusals into 403/404/409/422 and masks the
caller's number for everyone but the duty office."""
from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator
from sqlmodel import col, select
from temporalio.client import Client
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError

from activities.gateways.hmac_scheme import HOTLINE as HOTLINE_SCHEME
from api.services import signed_webhooks
from api.services.errors import ServiceError
from api.services.steps import Refused, run_step
from config import Settings
from definitions.loader import Library
from definitions.schema.workorders import SOURCES, URGENCIES
from store.db import session_scope
from store.directory import OrgUnit, PhoneError, mask_mobile, normalize_mobile
from store.workorders import WorkOrder, WorkOrderAssignment
from workflows.workorder import (CONFLICT, FORBIDDEN, INVALID, NOT_FOUND, STATUS_ZH, IncidentLinkIn, WorkOrderInfo,
                                 WorkOrderInput, WorkOrderView, WorkOrderWorkflow, workorder_workflow_id)

STATUS = {FORBIDDEN: 403, CONFLICT: 409, INVALID: 422, NOT_FOUND: 404}
DUTY_OFFICE = ("duty_staff", "duty_cadre", "duty_chief", "leading_leader", "admin")  # see the caller's number whole


class WorkOrderError(ServiceError):
    """A work order refused to be taken in or take a step."""


class WorkOrderIn(BaseModel):
    """A work order as the hotline passes it on."""

    ticket: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,47}$", description="the hotline's ticket id: sending "
                                                                                  "it twice starts one work order")
    source: Literal["12345", "110", "119", "120", "12122"]
    category: str = Field(min_length=1, max_length=50, description="e.g. 积水内涝, 道路塌陷, 燃气泄漏 (the definitions')")
    urgency: Literal["normal", "urgent"] = "normal"
    place: str = Field(min_length=1, max_length=500)
    town_id: str | None = Field(default=None, max_length=50, description="the town/street (directory id)")
    words: str = Field(min_length=1, max_length=10000, description="the caller's words 来电内容")
    caller_phone: str | None = Field(default=None, max_length=40)
    received_at: datetime | None = Field(default=None, description="when the hotline took the call; default: now")

    @field_validator("received_at")
    @classmethod
    def _aware(cls, v: datetime | None) -> datetime | None:
        if v is not None and v.tzinfo is None:
            raise ValueError("give a time zone, e.g. 2026-07-01T03:10:00+08:00")
        return v


assert set(SOURCES) == {"12345", "110", "119", "120", "12122"} and set(URGENCIES) == {"normal", "urgent"}


def _check(data: WorkOrderIn, rules) -> tuple[str, str | None, str | None, str]:
    """Directory checks: (town name, normalised phone, proposed unit, its name)."""
    phone = None
    if data.caller_phone:
        try:
            phone = normalize_mobile(data.caller_phone)
        except PhoneError as exc:
            raise WorkOrderError(422, f"caller_phone: {exc}") from exc
    if data.category not in rules.categories:
        raise WorkOrderError(422, f"category: {data.category!r} is not a work order category "
                                  f"(known: {', '.join(rules.categories)})")
    with session_scope(write=False) as s:
        town = s.get(OrgUnit, data.town_id) if data.town_id else None
        if data.town_id and (town is None or town.kind != "town"):
            raise WorkOrderError(422, f"town_id: {data.town_id!r} is not a town or street in the directory")
        proposed = rules.propose(data.category, data.town_id)
        unit = s.get(OrgUnit, proposed) if proposed else None
        if unit is None:
            proposed = None
        return (town.name if town else ""), phone, proposed, (unit.name if unit else "")


async def start(client: Client, settings: Settings, lib: Library, data: WorkOrderIn, actor: str) -> tuple[dict, bool]:
    """Start the work order of a ticket; (its state as JSON, whether it existed already: a ticket sent twice starts
    one work order and answers with the existing one)."""
    loaded = lib.workorder_rules()
    if loaded is None:
        raise WorkOrderError(422, "no default work order rules in the definitions (definitions/workorders/)")
    town, phone, proposed, proposed_name = await asyncio.to_thread(_check, data, loaded.model)
    wid = workorder_workflow_id(data.source, data.ticket)
    info = WorkOrderInfo(id=wid, source=data.source, ticket=data.ticket, category=data.category, urgency=data.urgency,
                         place=data.place, town_id=data.town_id, town_name=town, words=data.words, caller_phone=phone,
                         received_at=data.received_at, proposed_unit=proposed, proposed_unit_name=proposed_name,
                         created_by=actor)
    existed = False
    try:
        await client.start_workflow(WorkOrderWorkflow.run, WorkOrderInput(
            info=info, rules=loaded.model, rules_version=loaded.version, calendar=lib.work_calendar(
                [datetime.now(UTC).year, datetime.now(UTC).year + 1])),  # the limits count from the assignment on
                                    id=wid, task_queue=settings.task_queue)
    except WorkflowAlreadyStartedError:
        existed = True
    try:
        view = await client.get_workflow_handle_for(WorkOrderWorkflow.run, wid).execute_update(WorkOrderWorkflow.opened_view)
    except RPCError as exc:  # ended already: answer from the record
        if not existed:
            raise
        found = await asyncio.to_thread(workorder_detail, wid, "admin")
        if found is None:
            raise WorkOrderError(409, f"work order {wid!r} exists and has ended") from exc
        return found, True
    return view.model_dump(mode="json"), existed


# ------------------------------------------------------------------ the signed webhook of the hotline platform


sign_body = HOTLINE_SCHEME.sign  # the signature the platform sends: hex HMAC-SHA256 over `<timestamp>.<body>`


HOTLINE = signed_webhooks.Platform(name="hotline", scheme=HOTLINE_SCHEME, secret_setting="YINGJI_HOTLINE_SECRET")


async def verify_webhook(settings: Settings, timestamp: str | None, signature: str | None, body: bytes) -> str:
    """403 unless the request is signed with the shared secret, its timestamp within the window, and not taken
    before: its signature, to `signed_webhooks.remember` once the request was acted on."""
    secret = settings.hotline_secret.get_secret_value() if settings.hotline_secret else ""
    return await signed_webhooks.verify(HOTLINE, secret, timestamp, signature, body, settings.hotline_window_s)


class SatisfactionHook(BaseModel):
    source: Literal["12345", "110", "119", "120", "12122"]
    ticket: str = Field(min_length=1, max_length=48)
    satisfaction: Literal["满意", "基本满意", "不满意"]
    comment: str = Field(default="", max_length=2000)
    version: int | None = None


# ------------------------------------------------------------------ steps


def find(workorder_id: str) -> WorkOrder | None:
    with session_scope(write=False) as s:
        return s.get(WorkOrder, workorder_id)


def unit_exists(unit_id: str) -> str | None:
    """None if `unit_id` is a department or town of the directory; else why not."""
    with session_scope(write=False) as s:
        unit = s.get(OrgUnit, unit_id)
        if unit is None:
            return f"unit_id: {unit_id!r} is not in the directory (单位不存在)"
        if unit.kind not in ("department", "town"):
            return f"unit_id: {unit_id!r} is a {unit.kind}; a work order goes to a department or a town/street"
    return None


async def step(client: Client, workorder_id: str, action: str, update: Any, req) -> WorkOrderView:
    row = await asyncio.to_thread(find, workorder_id)
    if row is None:
        raise WorkOrderError(404, f"no work order {workorder_id!r}")
    if action == "assign" and (why := await asyncio.to_thread(unit_exists, req.unit_id)):
        raise WorkOrderError(422, why)
    try:
        return await run_step(client, workflow_id=row.id, subject=row.id, refused_kind="workorder.refused",
                              action=action, update=update, req=req, result_type=WorkOrderView, statuses=STATUS,
                              ended=f"work order {workorder_id!r} has ended ({STATUS_ZH.get(row.status, row.status)})")
    except Refused as r:
        raise WorkOrderError(r.status, r.why) from r


async def to_incident(client: Client, settings: Settings, lib: Library, workorder_id: str, actor: str, role: str,
                      summary: str | None = None) -> tuple[WorkOrderView, dict]:
    """A 110/119/120 notice (or any order) becomes an incident: the reporting chain starts (the existing intake,
    POST /api/incidents' service) with the order linked; both trails point at each other."""
    from api.services import incidents

    row = await asyncio.to_thread(find, workorder_id)
    if row is None:
        raise WorkOrderError(404, f"no work order {workorder_id!r}")
    loaded = lib.workorder_rules(row.rules_id) or lib.workorder_rules()
    cat = loaded.model.categories.get(row.category) if loaded else None
    if row.incident_id:
        raise WorkOrderError(409, f"工单已转为突发事件{row.incident_id} / the work order became incident "
                                  f"{row.incident_id} already")
    incident_id = f"WO-{row.source}-{row.ticket}"
    source_name = {"12345": "12345热线", "110": "110指挥中心", "119": "119指挥中心", "120": "120急救中心",
                   "12122": "12122高速公路热线"}[row.source]
    data = incidents.IncidentIn(
        id=incident_id, received_at=row.received_at,
        source=row.source if row.source in ("110", "119", "120", "12345") else "field",
        category=cat.incident_category if cat else "accident", subtype=(cat.incident_subtype if cat else "") or row.category,
        town_id=row.town_id, place=row.place, summary=summary or f"{row.words}(来源工单{row.id})",
        reporting_unit=source_name, reporter=f"{source_name}工单{row.ticket}")
    chain, _ = await incidents.start(client, settings, lib, data, actor)
    view = await step(client, workorder_id, "incident", WorkOrderWorkflow.link_incident,
                      IncidentLinkIn(actor=actor, role=role, incident_id=chain.incident_id))
    return view, {"incident_id": chain.incident_id, "workflow_id": chain.workflow_id}


# ------------------------------------------------------------------ reading


def sees_number(role: str, person_id: str | None, unit_persons: set[str]) -> bool:
    """The duty office sees the caller's number whole: a duty role, and not a person of a unit the order went to
    (a unit's head may hold a duty role's token too; to the unit the number is masked like to everyone else)."""
    return role in DUTY_OFFICE and (person_id is None or person_id not in unit_persons)


def masked(view: dict, role: str, person_id: str | None = None) -> dict:
    """The caller's number whole for the duty office; masked for everyone else."""
    persons = {p for a in view.get("assignments") or [] for p in a.get("answerers") or []}
    if not sees_number(role, person_id, persons):
        info = view.get("info") or {}
        if info.get("caller_phone"):
            info["caller_phone"] = mask_mobile(info["caller_phone"])
        if view.get("caller_phone"):
            view["caller_phone"] = mask_mobile(view["caller_phone"])
    return view


def _late(d: dict) -> str:
    if d.get("met_at"):
        return "late" if d.get("late_by_s") else "on_time"
    return "overdue" if d.get("overdue_at") else "open"


def _row(s, w: WorkOrder, role: str, person_id: str | None) -> dict:
    out = w.model_dump(mode="json")
    out["status_zh"] = STATUS_ZH.get(w.status, w.status)
    rows = list(s.exec(select(WorkOrderAssignment).where(WorkOrderAssignment.work_order_id == w.id)
                       .order_by(WorkOrderAssignment.seq)))
    out["assignments"] = [{**a.model_dump(mode="json"), "deadlines": [{**d, "state": _late(d)} for d in a.deadlines]}
                          for a in rows]
    return masked(out, role, person_id)


def workorder_list(role: str, person_id: str | None, limit: int = 100, status: str | None = None, unit_id: str | None = None,
                   source: str | None = None) -> list[dict]:
    with session_scope(write=False) as s:
        stmt = select(WorkOrder)
        if status:
            stmt = stmt.where(WorkOrder.status == status)
        if unit_id:
            stmt = stmt.where(WorkOrder.unit_id == unit_id)
        if source:
            stmt = stmt.where(WorkOrder.source == source)
        rows = s.exec(stmt.order_by(col(WorkOrder.received_at).desc()).limit(limit))
        return [_row(s, w, role, person_id) for w in list(rows)]


def workorder_detail(workorder_id: str, role: str, person_id: str | None = None) -> dict | None:
    with session_scope(write=False) as s:
        w = s.get(WorkOrder, workorder_id)
        return None if w is None else _row(s, w, role, person_id)


def valid_filter(name: str, value: str | None, allowed) -> None:
    if value is not None and value not in allowed:
        raise WorkOrderError(422, f"{name}: {value!r} is not one of {', '.join(allowed)}")


def now() -> datetime:
    return datetime.now(UTC)
