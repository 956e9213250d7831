"""Incident intake and the reporting chain's steps: validate, start or update the workflow, explain refusals.

The workflow's update validators decide who may do what and in which order; this
module turns their refusals into HTTP answers (403 role, 409 order, 422 input) and
records every refusal in the audit trail, so a supervisor sees the attempts too.
No database transaction is held while Temporal is called.
"""
from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Literal

from pydantic import BaseModel, Field, field_validator, model_validator
from sqlmodel import Session, col, select
from temporalio.client import Client
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError

from api.services.dates import DateRange
from api.services.errors import ServiceError
from api.services.steps import Refused, run_step
from config import Settings
from definitions.loader import Library
from definitions.schema.reporting import CATEGORY_ZH, Casualties, DisasterFigures, Severity
from store.audit import AuditChain, AuditEvent
from store.callouts import Callout
from store.db import session_scope
from store.directory import OrgUnit, PhoneError, normalize_mobile
from store.incidents import Incident, IncidentDeadline, IncidentReport, ReportReceipt, ReportVersion, deadline_is_open
from workflows.kit.events import ChainSettled, Reporting
from workflows.subjects import incident_subject, kind_of, validate_incident_id
from workflows.reporting import (
    CONFLICT,
    FORBIDDEN,
    INVALID,
    ChainView,
    IncidentInfo,
    IncidentReportingWorkflow,
    ReportingInput,
    limit_label,
)

STATUS = {FORBIDDEN: 403, CONFLICT: 409, INVALID: 422}
CLOCK_SKEW = timedelta(minutes=2)  # a time given "now" by a unit whose clock runs a little ahead


class IncidentError(ServiceError):
    """An incident refused to be taken in or take a step."""


class IncidentIn(BaseModel):
    """An incident as the duty office receives it (接报)."""

    id: str | None = Field(default=None, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$",
                           description="your id for it (e.g. a 12345 ticket): sending it twice starts one chain; "
                                       "not in the form of another kind's id (callout-…, W + 12 hex, drill-…)")
    received_at: datetime | None = Field(default=None, description="接报时间; default: now")
    occurred_at: datetime | None = Field(default=None, description="事发时间: when it happened")
    known_at: datetime | None = Field(default=None, description="知悉时间: when the reporting unit knew; with it, the "
                                                                "unit's report time is measured against the rules' limit")
    reported_at: datetime | None = Field(default=None, description="when the reporting unit reported to the duty "
                                                                   "office; default: the 接报 time (now)")
    source: Literal["110", "119", "120", "12345", "department", "town", "field", "media", "warning"]
    category: Literal["natural_disaster", "accident", "public_health", "social_security"]
    subtype: str = Field(default="", max_length=100, description="e.g. 建筑施工, 道路交通, 山体滑坡")
    severity: Severity | None = Field(default=None, description="I 特别重大 … IV 一般; default: from the casualties")
    town_id: str | None = Field(default=None, max_length=50, description="the town/street (directory id)")
    place: str = Field(min_length=1, max_length=500)
    title: str | None = Field(default=None, max_length=200)
    summary: str = Field(min_length=1, max_length=10000)
    casualties: Casualties = Field(default_factory=Casualties)
    figures: DisasterFigures | None = Field(default=None, description="灾情统计 known at intake (totals)")
    reporting_unit: str = Field(min_length=1, max_length=200, description="报告单位")
    reporting_unit_id: str | None = Field(default=None, max_length=50, description="its directory id, if it has one")
    reporter: str = Field(min_length=1, max_length=100, description="报告人")
    reporter_phone: str | None = Field(default=None, max_length=40)
    rules: str | None = Field(default=None, max_length=64, description="reporting rules id; default: the default rules")
    related: list[str] = Field(default_factory=list, max_length=20,
                               description="the call-outs (callout-…) this incident follows from (关联预警叫应), checked "
                                           "against the audit trail: its post-event review and case file include them")

    @field_validator("id")
    @classmethod
    def _incident_id(cls, v: str | None) -> str | None:
        return validate_incident_id(v) if v is not None else v  # SubjectError is a ValueError: 422 with the reason

    @field_validator("received_at", "occurred_at", "known_at", "reported_at")
    @classmethod
    def _aware(cls, v: datetime | None) -> datetime | None:
        if v is not None and v.tzinfo is None:
            raise ValueError("give a time zone, e.g. 2026-07-01T03:10:00+08:00")
        return v

    @model_validator(mode="after")
    def _in_order(self) -> IncidentIn:
        """事发 ≤ 知悉 ≤ the unit's report, none of them in the future (beyond a clock skew)."""
        latest = datetime.now(UTC) + CLOCK_SKEW
        for name in ("occurred_at", "known_at", "reported_at", "received_at"):
            v = getattr(self, name)
            if v is not None and v > latest:
                raise ValueError(f"{name}: {v.isoformat()} is in the future")
        times = [(n, getattr(self, n)) for n in ("occurred_at", "known_at", "reported_at")]
        given = [(n, v) for n, v in times if v is not None]
        for (a, va), (b, vb) in zip(given, given[1:]):
            if vb < va:
                raise ValueError(f"{b}: {vb.isoformat()} is before {a} ({va.isoformat()}); "
                                 "an incident happens, then the reporting unit knows, then it reports")
        return self


def _check(data: IncidentIn) -> tuple[str, str | None]:
    """Directory checks: (town name, normalised phone)."""
    phone = None
    if data.reporter_phone:
        try:
            phone = normalize_mobile(data.reporter_phone)
        except PhoneError as exc:
            raise IncidentError(422, f"reporter_phone: {exc}") from exc
    with session_scope(write=False) as s:
        town = s.get(OrgUnit, data.town_id) if data.town_id else None
        if data.town_id and (town is None or town.kind != "town"):
            raise IncidentError(422, f"town_id: {data.town_id!r} is not a town or street in the directory")
        if data.reporting_unit_id and s.get(OrgUnit, data.reporting_unit_id) is None:
            raise IncidentError(422, f"reporting_unit_id: {data.reporting_unit_id!r} is not in the directory")
        not_callouts = [r for r in data.related if kind_of(r) != "callout"]
        if not_callouts:
            raise IncidentError(422, f"related: {', '.join(map(repr, not_callouts))} is not a call-out (callout-…); "
                                     "an incident follows from call-outs only")
        missing = [r for r in data.related if s.get(AuditChain, r) is None]
        if missing:
            raise IncidentError(422, f"related: no audit trail of {', '.join(map(repr, missing))} (give a call-out id)")
        if data.id and s.get(Incident, data.id) is None:
            first = s.exec(select(AuditEvent).where(AuditEvent.subject == incident_subject(data.id))
                           .order_by(col(AuditEvent.seq)).limit(1)).first()
            if first is not None and first.kind.split(".", 1)[0] not in ("incident", "report"):
                raise IncidentError(409, f"id: {data.id!r} names an audit trail that is not an incident's "
                                         f"(it begins with {first.kind}); choose another id")
        return (town.name if town else ""), phone


def workflow_id_for(incident_id: str) -> str:
    return f"incident-{incident_id}"


def new_incident_id(now: datetime, timezone: str = "Asia/Shanghai") -> str:
    """INC-<the duty office's local date>-<six hex digits>: an incident received at 01:20 on the 5th, Beijing time,
    is one of the 5th's, as the office files it."""
    from zoneinfo import ZoneInfo

    return f"INC-{now.astimezone(ZoneInfo(timezone)):%Y%m%d}-{uuid.uuid4().hex[:6].upper()}"


async def start(client: Client, settings: Settings, lib: Library, data: IncidentIn, actor: str) -> tuple[ChainView, bool]:
    """Start the reporting chain of a new incident; (its state, whether it existed already)."""
    loaded = lib.reporting_rules(data.rules)
    if loaded is None:
        known = ", ".join(sorted(lib.of("reporting"))) or "none"
        raise IncidentError(422, f"rules: no reporting rules {data.rules!r} (known: {known})" if data.rules
                            else "no default reporting rules in the definitions")
    town, phone = await asyncio.to_thread(_check, data)
    incident_id = data.id or new_incident_id(datetime.now(UTC), settings.timezone)
    where = data.place if town and data.place.startswith(town) else f"{town}{data.place}"  # not 第1街道第1街道…
    title = data.title or f"{where}{data.subtype or CATEGORY_ZH[data.category]}"
    info = IncidentInfo(incident_id=incident_id, title=title, received_at=data.received_at, source=data.source,
                        category=data.category, subtype=data.subtype, severity=data.severity, town_id=data.town_id,
                        place=data.place, summary=data.summary, casualties=data.casualties, figures=data.figures,
                        reporting_unit=data.reporting_unit, reporting_unit_id=data.reporting_unit_id,
                        reporter=data.reporter, reporter_phone=phone, related=list(dict.fromkeys(data.related)),
                        occurred_at=data.occurred_at, known_at=data.known_at, reported_at=data.reported_at,
                        created_by=actor)
    wid = workflow_id_for(incident_id)
    existed = False
    try:
        await client.start_workflow(IncidentReportingWorkflow.run,
                                    ReportingInput(incident=info, rules=loaded.model, rules_version=loaded.version),
                                    id=wid, task_queue=settings.task_queue)
    except WorkflowAlreadyStartedError:
        existed = True
    handle = client.get_workflow_handle_for(IncidentReportingWorkflow.run, wid)
    try:
        view = await handle.execute_update(IncidentReportingWorkflow.opened_view)
    except RPCError as exc:  # the chain has ended already: answer from the record
        if not existed:
            raise
        raise IncidentError(409, f"incident {incident_id!r} exists and its reporting chain has ended") from exc
    return view, existed


# ------------------------------------------------------------------ steps


UPDATES = {"verbal": IncidentReportingWorkflow.verbal, "draft": IncidentReportingWorkflow.draft,
           "followup": IncidentReportingWorkflow.followup, "final": IncidentReportingWorkflow.final,
           "review": IncidentReportingWorkflow.review, "submit": IncidentReportingWorkflow.submit,
           "vertical": IncidentReportingWorkflow.vertical}


def check_vertical_line(incident_id: str) -> None:
    """拉条 is recorded for a department with a vertical line (垂直管理) only: 404 / 422 otherwise."""
    with session_scope(write=False) as s:
        row = s.get(Incident, incident_id)
        if row is None:
            raise IncidentError(404, f"no incident {incident_id!r}")
        unit = s.get(OrgUnit, row.reporting_unit_id) if row.reporting_unit_id else None
        if unit is None or not unit.vertical_line:
            raise IncidentError(422, f"the reporting unit ({row.reporting_unit or '-'}) is not a department with a "
                                     "vertical line (垂直管理): it reports to no city department")


def find(incident_id: str) -> Incident | None:
    with session_scope(write=False) as s:
        return s.get(Incident, incident_id)


async def step(client: Client, incident_id: str, action: str, req) -> ChainView:
    """Run one step of the chain as an update; a refusal becomes an IncidentError with the procedure's reason."""
    incident = await asyncio.to_thread(find, incident_id)
    if incident is None:
        raise IncidentError(404, f"no incident {incident_id!r}")
    try:
        return await run_step(client, workflow_id=incident.workflow_id, subject=incident_subject(incident.id),
                              refused_kind="report.refused",
                              action=action, update=UPDATES[action], req=req, result_type=ChainView, statuses=STATUS,
                              ended=f"the reporting chain of {incident_id!r} has ended ({incident.status}); "
                                    "nothing more is reported")
    except Refused as r:
        raise IncidentError(r.status, r.why) from r


# ------------------------------------------------------------------ reading


def _late_min(seconds: int | None) -> int | None:
    return None if seconds is None else -(-seconds // 60)


def deadline_dict(d: IncidentDeadline, now: datetime) -> dict:
    if d.met_at is not None:
        state = "late" if d.late_by_s else "on_time"
    elif d.settled is not None:  # closed with the chain: omitted 漏报 | lapsed 未报(已终止)
        state = d.settled
    else:
        state = "overdue" if now >= d.due_at or d.overdue_at else "open"
    return {"key": d.key, "label": limit_label(d.label, d.met_by), "due_at": d.due_at.isoformat(), "met_at": d.met_at.isoformat() if d.met_at else None,
            "met_by": d.met_by, "state": state, "late_by_s": d.late_by_s, "late_by_min": _late_min(d.late_by_s),
            "reminded_at": d.reminded_at.isoformat() if d.reminded_at else None,
            "overdue_at": d.overdue_at.isoformat() if d.overdue_at else None}


def incident_detail(incident_id: str) -> dict | None:
    now = datetime.now(UTC)
    with session_scope(write=False) as s:
        row = s.get(Incident, incident_id)
        if row is None:
            return None
        deadlines = list(s.exec(select(IncidentDeadline).where(IncidentDeadline.incident_id == incident_id)
                                .order_by(IncidentDeadline.due_at)))
        reports = list(s.exec(select(IncidentReport).where(IncidentReport.incident_id == incident_id)
                              .order_by(IncidentReport.seq)))
        versions = list(s.exec(select(ReportVersion).where(ReportVersion.incident_id == incident_id)
                               .order_by(ReportVersion.seq, ReportVersion.version)))
        receipts = list(s.exec(select(ReportReceipt).where(ReportReceipt.incident_id == incident_id)
                               .order_by(ReportReceipt.seq, ReportReceipt.id)))
        marks = list(s.exec(select(AuditEvent).where(AuditEvent.subject == incident_id,
                                                     col(AuditEvent.kind).like("report.%.late"))
                            .order_by(AuditEvent.seq)))
        omitted = list(s.exec(select(AuditEvent).where(AuditEvent.subject == incident_id,
                                                       col(AuditEvent.kind).like("report.%.omitted"))))
        city = list(s.exec(select(AuditEvent).where(AuditEvent.subject == incident_id,
                                                    col(AuditEvent.kind).like("report.city.%"))
                            .order_by(AuditEvent.seq)))
        settled = next((e for e in s.exec(select(AuditEvent).where(AuditEvent.subject == incident_id,
                                                                    AuditEvent.kind == Reporting.SETTLED))
                        if ChainSettled.read(e.payload).ended), None)
    dls = [deadline_dict(d, now) for d in deadlines]
    out = row.model_dump(mode="json")
    out["casualties"] = {k: out.pop(k) for k in ("deaths", "injured", "missing", "trapped")}
    out["deadlines"] = dls
    out["reports"] = [{**r.model_dump(mode="json", exclude={"id", "incident_id"}),
                       "versions": [v.model_dump(mode="json", exclude={"id", "incident_id", "seq"}) for v in versions
                                    if v.seq == r.seq],
                       "receipts": [x.model_dump(mode="json", exclude={"id", "incident_id", "seq"}) for x in receipts
                                    if x.seq == r.seq]} for r in reports]
    out["unit_report"] = ({"unit": row.reporting_unit, "unit_id": row.reporting_unit_id,
                           "occurred_at": row.occurred_at.isoformat() if row.occurred_at else None,
                           "known_at": row.known_at.isoformat() if row.known_at else None,
                           "reported_at": row.reported_at.isoformat() if row.reported_at else None,
                           "due_at": row.unit_due_at.isoformat(), "late_by_s": row.unit_late_by_s,
                           "late_by_min": _late_min(row.unit_late_by_s),
                           "state": "late" if row.unit_late_by_s else "on_time"}
                          if row.unit_due_at is not None else None)
    out["upward"] = upward_of(city)
    if out.get("vertical"):
        out["vertical"]["late_by_min"] = _late_min(out["vertical"].get("gap_s"))
    out["late_marks"] = [{"kind": e.kind, "at": e.at.isoformat(), "actor": e.actor, **{
        k: e.payload.get(k) for k in ("deadline", "label", "due_at", "met_at", "late_by_s", "late_by_min", "mark")}}
                         for e in marks]
    out["compliance"] = {"deadlines": len(dls), "on_time": sum(d["state"] == "on_time" for d in dls),
                         "late": sum(d["state"] == "late" for d in dls), "open": sum(d["state"] == "open" for d in dls),
                         "overdue": sum(d["state"] == "overdue" for d in dls),
                         "lapsed": [d["key"] for d in dls if d["state"] == "lapsed"],
                         "late_by_s": {d["key"]: d["late_by_s"] for d in dls if d["late_by_s"]},
                         "omitted": [e.payload.get("deadline") for e in omitted]}
    # closed by the end of the response or the review, not by a final report: by whom, when
    out["settled"] = ({"by": ChainSettled.read(settled.payload).by, "at": settled.at.isoformat()}
                      if settled is not None else None)
    return out


def upward_of(events: list[AuditEvent]) -> list[dict]:
    """上报: each report version to each upward office: sent by the city line or by SMS (fallback), signed for."""
    rows: dict[str, dict] = {}
    for e in events:
        step = e.step_id.rsplit("/", 1)[0]
        row = rows.setdefault(step, {k: e.payload.get(k) for k in ("to", "name", "report_id", "version", "kind", "label")}
                              | {"via": None, "sent_at": None, "receipt_id": None, "signed_at": None, "signed_by": None,
                                 "error": None})
        if e.kind == Reporting.CITY_SENT:
            row.update(via="cityline", sent_at=e.at.isoformat(), receipt_id=e.payload.get("receipt_id"))
        elif e.kind == Reporting.CITY_FALLBACK:
            row.update(via="sms", sent_at=e.at.isoformat(), error=e.payload.get("error"))
        elif e.kind == Reporting.CITY_FAILED:
            row.update(via="failed", error=e.payload.get("error"))
        elif e.kind == Reporting.CITY_RECEIPT:
            row.update(signed_at=e.at.isoformat(), signed_by=e.payload.get("by"))
    return list(rows.values())


def incident_list(limit: int, status: str | None, category: str | None, *, dates: DateRange | None = None) -> list[dict]:
    """Incidents, newest first; `dates`: received in these local days (api.services.dates)."""
    now = datetime.now(UTC)
    with session_scope(write=False) as s:
        stmt = select(Incident).order_by(col(Incident.received_at).desc()).limit(limit)
        if dates is not None:
            stmt = dates.where(stmt, col(Incident.received_at))
        if status:
            stmt = stmt.where(Incident.status == status)
        if category:
            stmt = stmt.where(Incident.category == category)
        rows = list(s.exec(stmt))
        ids = [r.id for r in rows]
        deadlines = list(s.exec(select(IncidentDeadline).where(col(IncidentDeadline.incident_id).in_(ids)))) if ids else []
    out = []
    for r in rows:
        mine = [d for d in deadlines if d.incident_id == r.id]
        pending = sorted((d for d in mine if deadline_is_open(d)), key=lambda d: d.due_at)
        out.append({"id": r.id, "title": r.title, "received_at": r.received_at.isoformat(), "source": r.source,
                    "category": r.category, "subtype": r.subtype, "severity": r.severity, "status": r.status,
                    "town_id": r.town_id, "place": r.place, "casualties": {"deaths": r.deaths, "injured": r.injured, "missing": r.missing,
                                                         "trapped": r.trapped},
                    "next_due": deadline_dict(pending[0], now) if pending else None,
                    "late": sum(1 for d in mine if d.late_by_s), "overdue": sum(1 for d in pending if now >= d.due_at)})
    return out


def valid_filter(name: str, value: str | None, allowed: tuple[str, ...]) -> None:
    if value is not None and value not in allowed:
        raise IncidentError(422, f"{name}: must be one of {', '.join(allowed)}")


def recent_callouts(s: Session) -> list[Callout]:
    """Call-outs of the last week (not drills): an incident may follow from one of them."""
    since = datetime.now(UTC) - timedelta(days=7)
    return list(s.exec(select(Callout).where(Callout.started_at > since, col(Callout.drill).is_(False))
                       .order_by(col(Callout.started_at).desc()).limit(20)))
