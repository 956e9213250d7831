"""Warning intake: JSON or CAP 1.2 → stored warning → call-out started, updated or cancelled.

The CAP identifier makes intake idempotent; an Update or Cancel finds the
running call-out through `references`.
"""
from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime

from pydantic import BaseModel, Field, field_validator
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError

from api.cap import CapAlert, level_from_text, parse_cap
from config import Settings
from definitions.loader import Library
from definitions.schema.common import Level
from store.audit import NewEvent, append
from store.db import session_scope
from store.directory import units_for_areas
from store.warnings import Warning
from workflows.callout import CalloutInput, NightHours, WarningCalloutWorkflow, WarningInfo


class IntakeError(ValueError):
    def __init__(self, status: int, message: str):
        self.status = status
        super().__init__(message)


class WarningIn(BaseModel):
    """A warning as JSON (what CAP carries, flattened)."""

    identifier: str = Field(min_length=1, max_length=200)
    sender: str = Field(default="", max_length=200)
    msg_type: str = Field(default="Alert", pattern="^(Alert|Update|Cancel)$")
    references: list[str] = Field(default_factory=list, description="identifiers of earlier warnings (Update, Cancel)")
    level: str | None = Field(default=None, description="blue/yellow/orange/red or 蓝/黄/橙/红")
    event: str = Field(default="", max_length=200)
    headline: str = Field(default="", max_length=500)
    description: str = Field(default="", max_length=5000)
    areas: list[str] = Field(default_factory=list, description="area codes of towns/villages or of the district")
    area_descs: list[str] = Field(default_factory=list, description="area names, e.g. 全区 or a town's name")
    sent: datetime | None = None
    expires: datetime | None = None
    drill: bool = False

    @field_validator("references", "areas", "area_descs")
    @classmethod
    def _short(cls, v: list[str]) -> list[str]:
        if len(v) > 500 or any(len(x) > 500 for x in v):
            raise ValueError("too many or too long entries")
        return v


class Normalised(BaseModel):
    identifier: str
    sender: str
    msg_type: str
    references: list[str]
    level: Level | None
    event: str
    headline: str
    description: str
    geocodes: list[str]
    area_descs: list[str]
    sent: datetime | None
    expires: datetime | None
    format: str
    raw: str | None = None
    drill: bool = False


class IntakeResult(BaseModel):
    warning_id: str
    level: str | None
    callout_id: str | None
    duplicate: bool = False
    action: str = "recorded"
    note: str | None = None


def from_json(w: WarningIn) -> Normalised:
    level = None
    if w.level:
        level = Level(w.level) if w.level in Level._value2member_map_ else level_from_text(w.level)
        if level is None:
            raise IntakeError(422, f"level: {w.level!r} is not a warning level (blue/yellow/orange/red, 蓝/黄/橙/红)")
    level = level or level_from_text(w.headline, w.event)
    return Normalised(identifier=w.identifier, sender=w.sender, msg_type=w.msg_type, references=w.references,
                      level=level, event=w.event, headline=w.headline,
                      description=w.description, geocodes=w.areas, area_descs=w.area_descs, sent=w.sent,
                      expires=w.expires, format="json", drill=w.drill)


def from_cap(data: bytes) -> Normalised:
    alert: CapAlert = parse_cap(data)  # raises CapError (a ValueError with a reason) on anything wrong
    info = next((i for i in alert.infos if alert.level and i.level == alert.level), alert.infos[0] if alert.infos else None)
    return Normalised(
        identifier=alert.identifier, sender=alert.sender, msg_type=alert.msg_type,
        references=[r.identifier for r in alert.references], level=alert.level,
        event=alert.event or "", headline=alert.headline or "", description=(info.description or "") if info else "",
        geocodes=alert.geocodes, area_descs=alert.area_descs, sent=alert.sent,
        expires=info.expires if info else None, format="cap", raw=data.decode("utf-8", "replace"))


def warning_id_for(sender: str, identifier: str) -> str:
    return "W" + hashlib.sha256(f"{sender}|{identifier}".encode()).hexdigest()[:12]


@dataclass
class _Context:
    existing: Warning | None
    towns: list[str]
    earlier: list[Warning]


def _context(w: Normalised) -> _Context:
    with session_scope(write=False) as s:
        existing = s.exec(select(Warning).where(Warning.identifier == w.identifier)).first()
        towns = [u.id for u in units_for_areas(s, w.geocodes, w.area_descs)]
        earlier = list(s.exec(select(Warning).where(col(Warning.identifier).in_(w.references))
                              .order_by(col(Warning.received_at).desc()))) if w.references else []
        return _Context(existing, towns, earlier)


def _record(row: Warning, event: NewEvent) -> bool:
    """Store the warning and its audit event; False if the same warning was stored meanwhile."""
    try:
        with session_scope() as s:
            s.add(row)
            s.flush()
            append(s, [event])
        return True
    except IntegrityError:
        return False


def _duplicate(existing: Warning) -> IntakeResult:
    return IntakeResult(warning_id=existing.id, level=existing.level, callout_id=existing.callout_id,
                        duplicate=True, action="duplicate", note="already received; nothing done")


async def intake(client: Client | None, settings: Settings, lib: Library, w: Normalised, source: str = "api",
                 actor: str = "system") -> IntakeResult:
    """Store a warning and start, update or cancel its call-out. Idempotent by identifier.

    No database transaction is held while Temporal is called.
    """
    ctx = await asyncio.to_thread(_context, w)
    if ctx.existing is not None:
        return _duplicate(ctx.existing)
    towns, earlier = ctx.towns, ctx.earlier
    wid = warning_id_for(w.sender, w.identifier)
    loaded = lib.callout_plan_for(f"{w.event} {w.headline}", w.level)
    row = Warning(id=wid, identifier=w.identifier, sender=w.sender, msg_type=w.msg_type, references=w.references,
                  level=w.level.value if w.level else None, category=loaded.model.category if loaded else None,
                  event=w.event, headline=w.headline, description=w.description, town_ids=towns,
                  area_descs=w.area_descs, sent_at=w.sent, expires_at=w.expires, source=source, format=w.format,
                  raw=w.raw, meta={"geocodes": w.geocodes[:200], "drill": w.drill})
    running = next((e.callout_id for e in earlier if e.callout_id), None)
    info = WarningInfo(warning_id=wid, identifier=w.identifier, msg_type=w.msg_type, level=w.level or Level.blue,
                       category=row.category or "", event=w.event, headline=w.headline, area_descs=w.area_descs,
                       town_ids=towns)
    subject = running or wid
    result = IntakeResult(warning_id=wid, level=row.level, callout_id=None)

    if w.msg_type in ("Update", "Cancel") and running and client is not None and await _is_running(client, running):
        row.callout_id = running
        handle = client.get_workflow_handle(running)
        if w.msg_type == "Cancel":
            await handle.signal(WarningCalloutWorkflow.cancel, f"CAP Cancel {w.identifier}")
            result.action = "canceled"
        else:
            if w.level is None:
                info = info.model_copy(update={"level": Level(earlier[0].level or "blue")})
            await handle.signal(WarningCalloutWorkflow.update, info)
            result.action = "updated"
        result.callout_id = running
    elif w.msg_type == "Cancel":
        result.note = "cancels no running call-out; recorded"
    elif running and not (w.level and earlier[0].level and w.level > Level(earlier[0].level)):
        row.callout_id = running
        result.note = "updates a call-out that has ended; the level did not rise, so nobody is called again"
    elif loaded and w.level and w.level >= loaded.model.min_level and (towns or any(
            t.scope in ("district", "departments") for t in loaded.model.tiers_for(w.level))):
        if client is None:
            raise IntakeError(503, "Temporal is not reachable; the warning was not stored, send it again")
        callout_id = f"callout-{wid}"
        subject = callout_id
        inp = CalloutInput(callout_id=callout_id, warning=info, plan=loaded.model, plan_version=loaded.version,
                           night=NightHours.for_zone(settings.timezone, settings.night_start, settings.night_end,
                                                     datetime.now(UTC)), drill=w.drill)
        try:
            await client.start_workflow(WarningCalloutWorkflow.run, inp, id=callout_id, task_queue=settings.task_queue)
        except WorkflowAlreadyStartedError:
            pass
        row.callout_id = callout_id
        result.callout_id, result.action = callout_id, "callout_started"
    else:
        plan_min = loaded.model.min_level.value if loaded else "orange"
        why = "no level" if w.level is None else f"{w.level.value} is below the plan's {plan_min}"
        result.note = f"recorded; no call-out ({why})"

    kind = "warning.received" if w.msg_type == "Alert" else f"warning.{w.msg_type.lower()}"
    event = NewEvent(subject=subject, kind=kind, step_id=f"warning/{wid}", actor=actor,
                     payload={"warning_id": wid, "identifier": w.identifier, "sender": w.sender, "msg_type": w.msg_type,
                              "level": row.level, "event": w.event, "headline": w.headline, "towns": towns,
                              "references": w.references, "format": w.format, "source": source,
                              "plan": loaded.model.id if loaded else None,
                              "plan_version": loaded.version if loaded else None, "action": result.action})
    if not await asyncio.to_thread(_record, row, event):
        existing = (await asyncio.to_thread(_context, w)).existing
        return _duplicate(existing) if existing else result
    return result


async def _is_running(client: Client, workflow_id: str) -> bool:
    try:
        desc = await client.get_workflow_handle(workflow_id).describe()
    except RPCError:
        return False
    return desc.status == WorkflowExecutionStatus.RUNNING
