"""Warning intake: JSON or CAP 1.2 → stored warning → call-out started, updated or cancelled.

CAP 1.2 makes an identifier unique per sender only: the pair (sender, identifier) makes intake
idempotent (the warning id hashes both, and the call-out's workflow id is `callout-<warning id>`),
and an Update or Cancel finds the call-out through `references` = (sender, identifier[, sent]).
Another sender's warning with an identifier seen before is a distinct warning (with its own
call-out), never a duplicate; an Update or Cancel of another sender's warning is refused and
recorded (a duty officer cancels a call-out by hand: `POST /api/callouts/{id}/cancel`).
"""
from __future__ import annotations

import asyncio
import hashlib
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from pydantic import BaseModel, Field, field_validator
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError

from api.cap import CapAlert, level_from_text, parse_cap
from api.services.errors import ServiceError
from api.services.proposals import propose_for_warning
from api.services.staleness import Freshness, expired_refusal, freshness
from config import Settings
from definitions.loader import Library, Loaded
from definitions.schema.common import Level
from store.audit import NewEvent, append
from store.db import session_scope
from store.directory import units_for_areas
from store.warnings import Warning
from workflows.callout import CalloutInput, NightHours, WarningCalloutWorkflow, WarningInfo
from workflows.publication import PublicationInput, PublicationWorkflow, Superseded
from workflows.subjects import callout_subject, publication_subject, warning_subject


class IntakeError(ServiceError):
    """A warning was refused (nothing stored)."""


class WarningIn(BaseModel):
    """A warning as JSON (what CAP carries, flattened)."""

    identifier: str = Field(min_length=1, max_length=200)
    sender: str = Field(default="", max_length=200)
    msg_type: str = Field(default="Alert", pattern="^(Alert|Update|Cancel)$")
    references: list[str] = Field(default_factory=list, description=(
        "earlier warnings (Update, Cancel) as CAP writes them, 'sender,identifier,sent' (or 'sender,identifier'); "
        "a bare identifier means one of this sender's own warnings"))
    level: str | None = Field(default=None, description="blue/yellow/orange/red or 蓝/黄/橙/红")
    event: str = Field(default="", max_length=200)
    headline: str = Field(default="", max_length=500)
    description: str = Field(default="", max_length=5000)
    areas: list[str] = Field(default_factory=list, description="area codes of towns/villages or of the district")
    area_descs: list[str] = Field(default_factory=list, description="area names, e.g. 全区 or a town's name")
    event_codes: dict[str, list[str]] = Field(default_factory=dict, description=(
        "CAP eventCode pairs, valueName → values (e.g. {\"GB/T 28592\": [\"11B09\"]}); a plan naming one is chosen "
        "before its event and headline"))
    sent: datetime | None = None
    expires: datetime | None = None
    drill: bool = False
    accept_stale: bool = Field(default=False, description=(
        "take the warning although it has expired (`expires` passed): without it an expired Alert or Update is "
        "refused with 409 and nothing is stored"))

    @field_validator("references", "areas", "area_descs")
    @classmethod
    def _short(cls, v: list[str]) -> list[str]:
        if len(v) > 500 or any(len(x) > 500 for x in v):
            raise ValueError("too many or too long entries")
        return v

    @field_validator("event_codes")
    @classmethod
    def _few_codes(cls, v: dict[str, list[str]]) -> dict[str, list[str]]:
        if len(v) > 50 or any(len(k) > 200 or len(vs) > 50 or any(len(x) > 200 for x in vs) for k, vs in v.items()):
            raise ValueError("at most 50 eventCode names of 50 values each, 200 characters apiece")
        return v


class Ref(BaseModel):
    """One warning an Update or Cancel refers to: CAP's `sender,identifier,sent`."""

    sender: str
    identifier: str
    sent: str | None = None
    implicit_sender: bool = Field(default=False, description="JSON gave only the identifier: the message's own sender")

    @property
    def warning_id(self) -> str:
        return warning_id_for(self.sender, self.identifier)


class Normalised(BaseModel):
    identifier: str
    sender: str
    msg_type: str
    references: list[str]
    refs: list[Ref] = Field(default_factory=list)
    level: Level | None
    event: str
    headline: str
    description: str
    geocodes: list[str]
    area_descs: list[str]
    event_codes: dict[str, list[str]] = Field(default_factory=dict)
    sent: datetime | None
    expires: datetime | None
    format: str
    raw: str | None = None
    drill: bool = False


class IntakeResult(BaseModel):
    warning_id: str
    level: str | None
    callout_id: str | None
    publication_id: str | None = None
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
                      refs=[_json_ref(r, w.sender) for r in w.references],
                      level=level, event=w.event, headline=w.headline,
                      description=w.description, geocodes=w.areas, area_descs=w.area_descs, event_codes=w.event_codes,
                      sent=w.sent, expires=w.expires, format="json", drill=w.drill)


def from_cap(data: bytes) -> Normalised:
    alert: CapAlert = parse_cap(data)  # raises CapError (a ValueError with a reason) on anything wrong
    info = next((i for i in alert.infos if alert.level and i.level == alert.level), alert.infos[0] if alert.infos else None)
    return Normalised(
        identifier=alert.identifier, sender=alert.sender, msg_type=alert.msg_type,
        references=[f"{r.sender},{r.identifier},{r.sent}" for r in alert.references],
        refs=[Ref(sender=r.sender, identifier=r.identifier, sent=r.sent) for r in alert.references], level=alert.level,
        event=alert.event or "", headline=alert.headline or "", description=(info.description or "") if info else "",
        geocodes=alert.geocodes, area_descs=alert.area_descs, event_codes=info.event_codes if info else {}, sent=alert.sent,
        expires=info.expires if info else None, format="cap", raw=data.decode("utf-8", "replace"))


def plan_for(lib: Library, w: Normalised) -> Loaded | None:
    """The call-out plan a warning gets: by its eventCode, then its event, then its headline (definitions/loader.py)."""
    return lib.callout_plan_for(w.event, w.level, headline=w.headline, event_codes=w.event_codes)


def _json_ref(text: str, own_sender: str) -> Ref:
    parts = [p.strip() for p in text.split(",")]
    if len(parts) == 1 and parts[0]:
        return Ref(sender=own_sender, identifier=parts[0], implicit_sender=True)
    if len(parts) in (2, 3) and parts[0] and parts[1]:
        return Ref(sender=parts[0], identifier=parts[1], sent=parts[2] if len(parts) == 3 else None)
    raise IntakeError(422, f"references: {text!r} is neither an identifier nor 'sender,identifier,sent'")


def warning_id_for(sender: str, identifier: str) -> str:
    return "W" + hashlib.sha256(f"{sender}|{identifier}".encode()).hexdigest()[:12]


@dataclass
class _Context:
    existing: Warning | None
    towns: list[str]
    earlier: list[Warning]
    same_identifier: list[Warning]  # other senders' warnings with this identifier: distinct warnings
    foreign: list[Warning]  # what the references name but another sender sent


def _context(w: Normalised) -> _Context:
    wid = warning_id_for(w.sender, w.identifier)
    with session_scope(write=False) as s:
        existing = s.get(Warning, wid)
        same = list(s.exec(select(Warning).where(Warning.identifier == w.identifier, Warning.id != wid)))
        towns = [u.id for u in units_for_areas(s, w.geocodes, w.area_descs)]
        ids = [r.warning_id for r in w.refs]
        earlier = list(s.exec(select(Warning).where(col(Warning.id).in_(ids))
                              .order_by(col(Warning.received_at).desc()))) if ids else []
        found = {e.id for e in earlier}
        # a bare identifier that is not this sender's: whose is it? (refused below, never acted on)
        bare = [r.identifier for r in w.refs if r.implicit_sender and r.warning_id not in found]
        foreign = [e for e in earlier if e.sender != w.sender]
        if bare:
            foreign += list(s.exec(select(Warning).where(col(Warning.identifier).in_(bare), Warning.sender != w.sender)))
        return _Context(existing, towns, earlier, same, foreign)


def _refuse_foreign(w: Normalised, foreign: list[Warning], actor: str, source: str) -> IntakeError:
    """An Update/Cancel naming another sender's warning: recorded on the refused message's own subject."""
    wid = warning_id_for(w.sender, w.identifier)
    names = ", ".join(f"{f.identifier!r} (sender {f.sender!r}, call-out {f.callout_id or 'none'})" for f in foreign)
    why = (f"refused: this {w.msg_type} from sender {w.sender!r} refers to {names}; only a warning's own sender may "
           "update or cancel it (CAP 1.2 references are sender,identifier,sent). A duty officer can end a call-out "
           "by hand: POST /api/callouts/{id}/cancel / 只有原发布单位可以更新或解除该预警")
    with session_scope() as s:
        append(s, [NewEvent(subject=warning_subject(wid), kind="warning.refused", step_id=f"refused/{uuid.uuid4().hex}", actor=actor,
                            payload={"warning_id": wid, "identifier": w.identifier, "sender": w.sender,
                                     "msg_type": w.msg_type, "references": w.references, "source": source,
                                     "format": w.format, "reason": "references another sender's warning",
                                     "referenced": [{"warning_id": f.id, "identifier": f.identifier,
                                                     "sender": f.sender, "callout_id": f.callout_id}
                                                    for f in foreign]})])
    return IntakeError(403, why)


def _row(w: Normalised, wid: str, loaded: Loaded | None, towns: list[str], source: str, fresh: Freshness,
         accept_stale: bool) -> Warning:
    """The warning as stored, with its age at intake."""
    return Warning(id=wid, identifier=w.identifier, sender=w.sender, msg_type=w.msg_type, references=w.references,
                   level=w.level.value if w.level else None, category=loaded.model.category if loaded else None,
                   event=w.event, headline=w.headline, description=w.description, town_ids=towns,
                   area_descs=w.area_descs, sent_at=w.sent, expires_at=w.expires, source=source, format=w.format,
                   raw=w.raw, meta={"geocodes": w.geocodes[:200], "drill": w.drill, "age": fresh.payload(),
                                    "accepted_stale": bool(accept_stale and fresh.stale)})


def _refuse_expired(w: Normalised, fresh: Freshness, tz: str, actor: str, source: str) -> IntakeError:
    """An expired Alert or Update not accepted: recorded on the refused message's own subject, nothing stored."""
    wid = warning_id_for(w.sender, w.identifier)
    with session_scope() as s:
        append(s, [NewEvent(subject=warning_subject(wid), kind="warning.refused", step_id=f"refused/{uuid.uuid4().hex}",
                            actor=actor, payload={"warning_id": wid, "identifier": w.identifier, "sender": w.sender,
                                                  "msg_type": w.msg_type, "source": source, "format": w.format,
                                                  "reason": "expired", "age": fresh.payload(), "age_s": fresh.age_s})])
    return IntakeError(409, expired_refusal(fresh, tz))


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
                        publication_id=existing.publication_id, duplicate=True, action="duplicate",
                        note="already received; nothing done")


async def intake(client: Client | None, settings: Settings, lib: Library, w: Normalised, source: str = "api",
                 actor: str = "system", accept_stale: bool = False) -> IntakeResult:
    """Store a warning and start, update or cancel its call-out. Idempotent by (sender, identifier).

    An expired Alert or Update (its `expires` passed) is refused (409, nothing stored) unless accept_stale;
    from a feed it is recorded and nobody is called. Every warning's age is recorded with it.
    No database transaction is held while Temporal is called.
    """
    ctx = await asyncio.to_thread(_context, w)
    if ctx.existing is not None:
        return _duplicate(ctx.existing)
    if w.msg_type in ("Update", "Cancel") and ctx.foreign:
        raise await asyncio.to_thread(_refuse_foreign, w, ctx.foreign, actor, source)
    fresh = freshness(w.sent, w.expires, datetime.now(UTC), settings.stale_warning_hours)
    hold = w.msg_type != "Cancel" and fresh.expired and not accept_stale
    if hold and not source.startswith("feed"):
        raise await asyncio.to_thread(_refuse_expired, w, fresh, settings.timezone, actor, source)
    ctx.earlier = [e for e in ctx.earlier if e.sender == w.sender]  # an Alert's references: its own sender's only
    towns, earlier = ctx.towns, ctx.earlier
    wid = warning_id_for(w.sender, w.identifier)
    loaded = plan_for(lib, w)
    row = _row(w, wid, loaded, towns, source, fresh, accept_stale)
    running = next((e.callout_id for e in earlier if e.callout_id), None)
    info = WarningInfo(warning_id=wid, identifier=w.identifier, msg_type=w.msg_type, level=w.level or Level.blue,
                       category=row.category or "", event=w.event, headline=w.headline, area_descs=w.area_descs,
                       town_ids=towns)
    subject = running or warning_subject(wid)
    result = IntakeResult(warning_id=wid, level=row.level, callout_id=None)
    others = sorted({o.sender for o in ctx.same_identifier})
    if others:
        row.meta["identifier_also_from"] = others

    if hold:  # an expired warning from a feed
        result.note = "expired before it was received; recorded, nobody is called"
    elif w.msg_type in ("Update", "Cancel") and running and client is not None and await _is_running(client, running):
        row.callout_id = running
        if w.level is None:  # an Update without a level keeps the running one's
            info = info.model_copy(update={"level": Level(earlier[0].level or "blue")})
        result.action = await _pass_on(client, running, w, info)
        result.callout_id = running
    elif (pub := _publication_due(loaded, w, earlier, towns)) is not None:  # issue 20: 精准发布 below orange
        purpose, informed_by = pub
        if w.level is None and earlier:  # a Cancel without a level: the 解除 names the earlier warning's
            info = info.model_copy(update={"level": Level(earlier[0].level or "blue")})
        # the warning's own intake event stays on the warning's subject; the publication's trail is its own
        row.publication_id = result.publication_id = await _start_publication(
            client, settings, info, loaded, purpose, informed_by, w.drill or any(e.meta.get("drill") for e in earlier))
        result.action = {"publish": "published", "update": "published_update", "cancel": "publication_canceled"}[purpose]
        result.note = f"{row.level or 'no level'} is below the plan's {loaded.model.min_level.value}: published, nobody is called"
        await _supersede(client, earlier, Superseded(by=result.publication_id, reason=f"CAP {w.msg_type} {w.identifier}"))
    elif w.msg_type == "Cancel":
        result.note = "cancels no running call-out; recorded"
    elif running and not (w.level and earlier[0].level and w.level > Level(earlier[0].level)):
        row.callout_id = running
        result.note = "updates a call-out that has ended; the level did not rise, so nobody is called again"
    elif loaded and w.level and w.level >= loaded.model.min_level and (towns or any(
            t.scope in ("district", "departments") for t in loaded.model.tiers_for(w.level))):
        callout_id = subject = await _start_callout(client, settings, info, loaded, w.drill)
        row.callout_id = callout_id
        result.callout_id, result.action = callout_id, "callout_started"
        await _supersede(client, earlier, Superseded(by=callout_id, reason=f"raised to {w.level.value}: the call-out takes over"))
    else:
        plan_min = loaded.model.min_level.value if loaded else "orange"
        why = "no level" if w.level is None else f"{w.level.value} is below the plan's {plan_min}"
        result.note = f"recorded; no call-out ({why})"
    if others:
        result.note = ((result.note + "; ") if result.note else "") + (
            f"identifier {w.identifier!r} was also used by {', '.join(map(repr, others))}: a distinct warning "
            "(CAP identifiers are unique per sender)")

    event = _received(w, row, subject, actor, source, others, loaded, result.action)
    event.payload.update(age=fresh.payload(), age_s=fresh.age_s, accepted_stale=row.meta["accepted_stale"])
    if not await asyncio.to_thread(_record, row, event):
        existing = (await asyncio.to_thread(_context, w)).existing
        return _duplicate(existing) if existing else result
    await propose_for_warning(client, settings, lib, w, row, loaded, result)  # a warning that is a start condition
    return result


def _publication_due(loaded: Loaded | None, w: Normalised, earlier: list[Warning],
                     towns: list[str]) -> tuple[str, list[str]] | None:
    """What a warning below the plan's call-out level publishes (issue 20), as (purpose, publications told):
    a Cancel of a published warning tells those the publications reached (解除); an Alert or Update whose plan
    publishes for its level goes to everyone in scope of that level (an Update's new text too: it is the
    current warning, and those informed of the earlier one need it as much as those newly in scope)."""
    published = [e.publication_id for e in earlier if e.publication_id]
    if loaded is None:
        return None
    if w.msg_type == "Cancel":
        return ("cancel", published) if published else None
    level = loaded.model.publish_for(w.level)
    if level is None or not (towns or any(t.scope in ("district", "departments") for t in level.tiers)):
        return None
    return ("update" if w.msg_type == "Update" and published else "publish"), []


async def _start_publication(client: Client | None, settings: Settings, info: WarningInfo, loaded: Loaded,
                             purpose: str, informed_by: list[str], drill: bool) -> str:
    if client is None:
        raise IntakeError(503, "Temporal is not reachable; the warning was not stored, send it again")
    pid = publication_subject(info.warning_id)  # the publication's workflow id and audit subject: idempotent
    inp = PublicationInput(publication_id=pid, warning=info, plan=loaded.model, plan_version=loaded.version,
                           purpose=purpose, informed_by=informed_by, drill=drill)  # type: ignore[arg-type]
    try:
        await client.start_workflow(PublicationWorkflow.run, inp, id=pid, task_queue=settings.task_queue)
    except WorkflowAlreadyStartedError:
        pass
    return pid


async def _supersede(client: Client | None, earlier: list[Warning], note: Superseded) -> None:
    """Tell the earlier warnings' publications still running what took over (recorded in their trails; a
    call-out ends them). One that has ended already has nothing to hear."""
    for pid in {e.publication_id for e in earlier if e.publication_id}:
        try:
            await client.get_workflow_handle(pid).signal(PublicationWorkflow.superseded, note)  # type: ignore[union-attr]
        except RPCError:
            pass


async def _pass_on(client: Client, running: str, w: Normalised, info: WarningInfo) -> str:
    """An Update or Cancel for a call-out still running: signalled to it."""
    handle = client.get_workflow_handle(running)
    if w.msg_type == "Cancel":
        await handle.signal(WarningCalloutWorkflow.cancel, f"CAP Cancel {w.identifier}")
        return "canceled"
    await handle.signal(WarningCalloutWorkflow.update, info)
    return "updated"


async def _start_callout(client: Client | None, settings: Settings, info: WarningInfo, loaded: Loaded,
                         drill: bool) -> str:
    if client is None:
        raise IntakeError(503, "Temporal is not reachable; the warning was not stored, send it again")
    callout_id = callout_subject(info.warning_id)  # the call-out's workflow id and audit subject: idempotent per sender
    inp = CalloutInput(callout_id=callout_id, warning=info, plan=loaded.model, plan_version=loaded.version,
                       night=NightHours.for_zone(settings.timezone, settings.night_start, settings.night_end,
                                                 datetime.now(UTC)), drill=drill)
    try:
        await client.start_workflow(WarningCalloutWorkflow.run, inp, id=callout_id, task_queue=settings.task_queue)
    except WorkflowAlreadyStartedError:
        pass
    return callout_id


def _received(w: Normalised, row: Warning, subject: str, actor: str, source: str, others: list[str],
              loaded: Loaded | None, action: str) -> NewEvent:
    """The audit event of a warning taken in: what it said, the plan it got and what was done with it."""
    kind = "warning.received" if w.msg_type == "Alert" else f"warning.{w.msg_type.lower()}"
    return NewEvent(subject=subject, kind=kind, step_id=f"warning/{row.id}", actor=actor,
                    payload={"warning_id": row.id, "identifier": w.identifier, "sender": w.sender, "msg_type": w.msg_type,
                             "level": row.level, "event": w.event, "headline": w.headline, "towns": row.town_ids,
                             "references": w.references, "format": w.format, "source": source,
                             "identifier_also_from": others,
                             "plan": loaded.model.id if loaded else None,
                             "plan_version": loaded.version if loaded else None, "action": action})


async def _is_running(client: Client, workflow_id: str) -> bool:
    try:
        desc = await client.get_workflow_handle(workflow_id).describe()
    except RPCError:
        return False
    return desc.status == WorkflowExecutionStatus.RUNNING
