"""Compiling the event report from the audit events alone (store/review/, store/report.py)."""
from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

import structlog
from sqlmodel import Session, col, select
from temporalio import activity

from activities.common import now as _now
from activities.review.view import save_view
from config import get_settings
from definitions.schema.reporting import CATEGORY_ZH, Severity
from store.audit import NewEvent, append
from store.db import session_scope
from store.directory import OrgUnit, Person
from store.incidents import Incident, ReportVersion
from store.replay import load_events
from store.report import render, sha256
from store.review import ReviewReport, statistics, timeline
from workflows.kit import names
from workflows.review import CompileRequest, ReportInfo, late_text

log = structlog.get_logger("yingji.review")


def _incident_part(s: Session, incident_id: str, events: dict[str, list]) -> dict[str, Any]:
    row = s.get(Incident, incident_id)
    received = next((e for e in events.get(incident_id, []) if e.kind == "incident.received"), None)
    p = received.payload if received else {}
    out = {"title": (row.title if row else None) or p.get("title"), "received_at": received.at.isoformat() if received
           else (row.received_at.isoformat() if row else None), "source": p.get("source"),
           "category": p.get("category"), "category_zh": CATEGORY_ZH.get(p.get("category") or ""),
           "subtype": p.get("subtype"), "place": p.get("place") or (row.place if row else None),
           "reporting_unit": p.get("reporting_unit"), "summary": p.get("summary"),
           "severity": row.severity if row else p.get("severity"), "status": row.status if row else None,
           "closed_at": row.closed_at.isoformat() if row and row.closed_at else None,
           "casualties": ({"deaths": row.deaths, "injured": row.injured, "missing": row.missing, "trapped": row.trapped}
                          if row else p.get("casualties") or {})}
    try:
        out["severity_zh"] = Severity(out["severity"]).zh if out["severity"] else None
    except ValueError:
        out["severity_zh"] = None
    approved = s.exec(select(ReportVersion).where(ReportVersion.incident_id == incident_id,
                                                  ReportVersion.decision == "approve")
                      .order_by(col(ReportVersion.seq).desc(), col(ReportVersion.version).desc())).first()
    if approved is not None:  # the latest approved facts (快报事实)
        out["what_happened"] = approved.content.get("what_happened")
        out["measures"] = approved.content.get("measures")
        out["latest_report_seq"] = approved.seq
    return out


def build_report_data(s: Session, req: CompileRequest, at: datetime) -> dict[str, Any]:
    v = req.record.view
    events = {subject: load_events(s, subject) for subject in v.subjects}
    stats = statistics(events)
    people: set[str] = {u["person_id"] for c in stats["callouts"] for u in c["unreachable"] if u["person_id"]}
    actors = {e.actor for evs in events.values() for e in evs}
    signers = {x.by for x in v.signoffs}
    ids = list(people | actors | signers)
    names = {pid: name for pid, name in s.exec(select(Person.id, Person.name).where(col(Person.id).in_(ids)))} if ids else {}
    unit_names = {uid: name for uid, name in s.exec(select(OrgUnit.id, OrgUnit.name))}  # tasks' and directives' assignees
    for c in stats["callouts"]:
        for u in c["unreachable"]:
            u["name"] = names.get(u["person_id"] or "", "")
    units, shortcomings, suggestions = [], [], []
    for u in v.units:
        d = u.model_dump(mode="json")
        d["late_text"] = late_text(u.late_by_s) if u.late_by_s else None
        d["submitted_by_name"] = names.get(u.submitted_by or "", "") or u.submitted_by
        units.append(d)
        if u.summary is not None:
            shortcomings.append({"unit": u.name, "text": u.summary.shortcomings})
            if u.summary.suggestions:
                suggestions.append({"unit": u.name, "text": u.summary.suggestions})
    signoff = None
    if req.signoff is not None:
        signoff = {**req.signoff.model_dump(mode="json"), "by_name": names.get(req.signoff.by, "")}
    return {
        "format": "yingji-event-report/1", "incident_id": v.incident_id, "activation_id": v.activation_id,
        "title": v.title, "version": req.version, "final": req.final, "compiled_at": at.isoformat(),
        "compiled_by": req.by, "subjects": v.subjects, "incident": _incident_part(s, v.incident_id, events),
        "timeline": timeline(events, names={**unit_names, **names}), "statistics": stats, "units": units,
        "lessons": {"shortcomings": shortcomings, "suggestions": suggestions},
        "signoff": signoff,
        "returns": [x.model_dump(mode="json") for x in v.signoffs if x.decision == "return"],
        "names": names, "template": {"id": v.template, "version": v.template_version},
    }


def compile_report(req: CompileRequest) -> ReportInfo:
    settings, at = get_settings(), _now()
    v = req.record.view
    with session_scope(write=False) as s:
        existing = s.exec(select(ReviewReport).where(ReviewReport.incident_id == v.incident_id,
                                                     ReviewReport.version == req.version)).first()
        if existing is not None:  # a retry: the report of this version exists already
            return ReportInfo(version=existing.version, final=existing.final, compiled_at=existing.compiled_at,
                              compiled_by=existing.compiled_by, sha256_json=existing.sha256_json,
                              sha256_pdf=existing.sha256_pdf, pdf_bytes=len(existing.pdf) if existing.pdf else None)
        data = build_report_data(s, req, at)
    pdf_error = None
    try:
        text, html, pdf = render(data, settings.timezone)
    except Exception as exc:  # noqa: BLE001 - a report without its PDF is better than none; the error is recorded
        log.error("event report PDF failed", incident=v.incident_id, error=str(exc))
        text, html, _ = render(data, settings.timezone, pdf=False)
        pdf, pdf_error = None, str(exc)[:500]
    info = ReportInfo(version=req.version, final=req.final, compiled_at=at, compiled_by=req.by,
                      sha256_json=sha256(text), sha256_pdf=sha256(pdf) if pdf else None, pdf_bytes=len(pdf) if pdf else None)
    kind = "review.report.final" if req.final else "review.report.compiled"
    with session_scope() as s:
        save_view(s, v)
        s.flush()
        s.add(ReviewReport(incident_id=v.incident_id, version=req.version, final=req.final, compiled_at=at,
                           compiled_by=req.by, data=data, json_text=text, html=html, pdf=pdf,
                           sha256_json=info.sha256_json, sha256_pdf=info.sha256_pdf))
        st = data["statistics"]
        append(s, [NewEvent(subject=v.subject, kind=kind, step_id=f"report/v{req.version}", actor=req.by,
                            workflow_id=req.record.workflow_id, run_id=req.record.run_id, at=at, payload={
                                "version": req.version, "final": req.final, "sha256_json": info.sha256_json,
                                "sha256_pdf": info.sha256_pdf, "pdf_error": pdf_error,
                                "units": len(data["units"]),
                                "summaries": sum(1 for u in data["units"] if u["summary"]),
                                "callouts": [{"subject": c["subject"], "targets": c["targets"],
                                              "acknowledged": c["acknowledged"]} for c in st["callouts"]],
                                "escalations": st["escalations"]["total"], "events": st["events"]})])
    return info


@activity.defn(name=names.Review.COMPILE)
async def compile_(req: CompileRequest) -> ReportInfo:
    return await asyncio.to_thread(compile_report, req)
