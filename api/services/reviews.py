"""Post-event reviews 复盘: start one by hand, run its steps as updates, read the review, its report, its case file.

The workflow's update validators decide who may do what and in which order; this module turns
their refusals into HTTP answers (403 role, 409 order, 422 input) and records every refusal in the
review's audit trail. No database transaction is held while Temporal is called.
"""
from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any
from urllib.parse import quote

from pydantic import BaseModel, Field
from sqlmodel import Session, col, select
from temporalio.client import Client
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError

from api.services.dates import DateRange
from api.services.errors import ServiceError
from api.services.steps import Refused, run_step
from config import Settings
from definitions.loader import Library
from store.audit import AuditChain, AuditEvent
from store.db import session_scope
from store.directory import OrgUnit, Person
from store.incidents import Incident
from store.activations import Activation
from store.review import CaseFile, Review, ReviewReport, ReviewUnit, linked_callouts
from workflows.subjects import SubjectError, incident_subject, validate_incident_id
from workflows.review import (
    CONFLICT,
    FORBIDDEN,
    INVALID,
    PostEventReviewWorkflow,
    ReviewInput,
    ReviewView,
    review_subject,
    review_workflow_id,
)

STATUS = {FORBIDDEN: 403, CONFLICT: 409, INVALID: 422}
MEDIA = {"json": "application/json; charset=utf-8", "html": "text/html; charset=utf-8", "pdf": "application/pdf"}


class ReviewError(ServiceError):
    """A review refused to start or take a step."""


class ReviewStart(BaseModel):
    """Start the review of an incident by hand (a terminated activation starts its own)."""

    incident_id: str = Field(min_length=1, max_length=100)
    activation_id: str | None = Field(default=None, max_length=100, description="its audit subject is activation/<id>")
    units: list[str] = Field(default_factory=list, max_length=500,
                             description="participating org unit ids; empty: from the incident's audit trail")
    related: list[str] = Field(default_factory=list, max_length=100,
                               description="the call-outs of the case: only those the incident named when it was "
                                           "received (checked); the case takes those in any case")
    template: str | None = Field(default=None, max_length=64, description="review template id; default: the default")
    title: str | None = Field(default=None, max_length=200)


def _check(data: ReviewStart) -> None:
    try:
        validate_incident_id(data.incident_id)
    except SubjectError as exc:
        raise ReviewError(422, f"incident_id: {exc}") from exc
    with session_scope(write=False) as s:
        if s.get(Incident, data.incident_id) is None and s.get(AuditChain, incident_subject(data.incident_id)) is None:
            raise ReviewError(404, f"no incident {data.incident_id!r}")
        if data.activation_id:
            aid = data.activation_id.removeprefix("activation/").removeprefix("activation-")
            act = s.get(Activation, aid)
            if act is None or act.incident_id != data.incident_id:
                raise ReviewError(422, f"activation_id: {data.activation_id!r} is not an activation of incident "
                                       f"{data.incident_id!r}")
        if data.units:
            known = set(s.exec(select(OrgUnit.id).where(col(OrgUnit.id).in_(data.units))))
            unknown = [u for u in data.units if u not in known]
            if unknown:
                raise ReviewError(422, f"units: not in the directory: {', '.join(unknown)}")
        linked = linked_callouts(s, data.incident_id)
        stray = [r for r in data.related if r not in linked]
        if stray:
            raise ReviewError(422, f"related: {', '.join(map(repr, stray))} is not linked to incident "
                                   f"{data.incident_id!r} in its audit trail; the case takes the call-outs the incident "
                                   "named when it was received (POST /api/incidents … \"related\")")


async def start(client: Client, settings: Settings, lib: Library, data: ReviewStart,
                actor: str) -> tuple[ReviewView, bool]:
    """Start the review (id review-<incident>); (its state, whether it existed already)."""
    if lib.review_template(data.template) is None:
        known = ", ".join(sorted(lib.of("review"))) or "none"
        raise ReviewError(422, f"template: no review template {data.template!r} (known: {known})" if data.template
                          else "no default review template in the definitions")
    await asyncio.to_thread(_check, data)
    wid = review_workflow_id(data.incident_id)
    inp = ReviewInput(incident_id=data.incident_id, activation_id=data.activation_id, started_by=actor,
                      units=data.units, related=data.related, template=data.template, title=data.title)
    existed = False
    try:
        await client.start_workflow(PostEventReviewWorkflow.run, inp, id=wid, task_queue=settings.task_queue)
    except WorkflowAlreadyStartedError:
        existed = True
    handle = client.get_workflow_handle_for(PostEventReviewWorkflow.run, wid)
    try:
        view = await handle.execute_update(PostEventReviewWorkflow.opened_view)
    except RPCError as exc:
        if not existed:
            raise
        raise ReviewError(409, f"the review of {data.incident_id!r} has ended; its case file is sealed") from exc
    return view, existed


UPDATES = {"summary": PostEventReviewWorkflow.summary, "compile": PostEventReviewWorkflow.compile,
           "signoff": PostEventReviewWorkflow.signoff}


def find(incident_id: str) -> Review | None:
    with session_scope(write=False) as s:
        return s.get(Review, incident_id)


async def step(client: Client, incident_id: str, action: str, req) -> ReviewView:
    review = await asyncio.to_thread(find, incident_id)
    if review is None:
        raise ReviewError(404, f"no review of incident {incident_id!r}")
    try:
        return await run_step(client, workflow_id=review.workflow_id, subject=review.subject,
                              refused_kind="review.refused", action=action, update=UPDATES[action], req=req,
                              result_type=ReviewView, statuses=STATUS,
                              ended=f"the review of {incident_id!r} has ended ({review.status}); its case file is sealed")
    except Refused as r:
        raise ReviewError(r.status, r.why) from r


# ------------------------------------------------------------------ reading


def _report_links(incident_id: str, version: int) -> dict[str, str]:
    base = f"/api/reviews/{incident_id}/report"
    return {fmt: f"{base}.{fmt}?version={version}" for fmt in ("json", "html", "pdf")}


def detail(incident_id: str) -> dict | None:
    with session_scope(write=False) as s:
        row = s.get(Review, incident_id)
        if row is None:
            return None
        units = list(s.exec(select(ReviewUnit).where(ReviewUnit.incident_id == incident_id).order_by(ReviewUnit.id)))
        reports = list(s.exec(select(ReviewReport.version, ReviewReport.final, ReviewReport.compiled_at,
                                     ReviewReport.compiled_by, ReviewReport.sha256_json, ReviewReport.sha256_pdf)
                              .where(ReviewReport.incident_id == incident_id).order_by(ReviewReport.version)))
        case = s.exec(select(CaseFile.filename, CaseFile.sha256, CaseFile.size, CaseFile.sealed_at, CaseFile.sealed_by,
                             CaseFile.manifest_sha256).where(CaseFile.incident_id == incident_id)).first()
    out = row.model_dump(mode="json")
    out["units"] = [u.model_dump(mode="json", exclude={"id", "incident_id"}) for u in units]
    out["reports"] = [{"version": v, "final": f, "compiled_at": at.isoformat(), "compiled_by": by, "sha256_json": sj,
                       "sha256_pdf": sp, "links": _report_links(incident_id, v)} for v, f, at, by, sj, sp in reports]
    out["case_file"] = None if case is None else {
        "filename": case[0], "sha256": case[1], "bytes": case[2], "sealed_at": case[3].isoformat(),
        "sealed_by": case[4], "manifest_sha256": case[5], "download": f"/api/reviews/{incident_id}/casefile"}
    done = [u for u in units if u.submitted_at is not None]
    out["progress"] = {"units": len(units), "submitted": len(done), "late": sum(1 for u in done if u.late_by_s),
                       "overdue": sum(1 for u in units if u.state == "overdue")}
    return out


def listing(limit: int, status: str | None, *, dates: DateRange | None = None) -> list[dict]:
    """Reviews, newest first; `dates`: started in these local days (api.services.dates)."""
    with session_scope(write=False) as s:
        stmt = select(Review).order_by(col(Review.started_at).desc()).limit(limit)
        if dates is not None:
            stmt = dates.where(stmt, col(Review.started_at))
        if status:
            stmt = stmt.where(Review.status == status)
        rows = list(s.exec(stmt))
    return [{k: v for k, v in r.model_dump(mode="json").items() if k not in ("subjects", "gaps")} for r in rows]


def report(incident_id: str, version: int | None, fmt: str) -> tuple[bytes | str, str, ReviewReport]:
    with session_scope(write=False) as s:
        stmt = select(ReviewReport).where(ReviewReport.incident_id == incident_id)
        stmt = stmt.where(ReviewReport.version == version) if version else stmt.order_by(col(ReviewReport.version).desc())
        row = s.exec(stmt).first()
    if row is None:
        which = f"version {version}" if version else "no compiled report yet"
        raise ReviewError(404, f"review of {incident_id!r}: {which}" + (" does not exist" if version else ""))
    if fmt == "pdf" and row.pdf is None:
        raise ReviewError(404, f"report v{row.version} has no PDF (rendering failed; see the audit event)")
    body = {"json": row.json_text, "html": row.html, "pdf": row.pdf}[fmt]
    return body, MEDIA[fmt], row


def case_file(incident_id: str) -> CaseFile | None:
    with session_scope(write=False) as s:
        return s.get(CaseFile, incident_id)


__all__ = ["ReviewError", "ReviewStart", "start", "step", "detail", "listing", "report", "case_file", "review_subject"]


# ------------------------------------------------------------------ what the console's pages show (with a session)


def open_reviews(s: Session, now: datetime, limit: int = 20) -> list[dict[str, Any]]:
    """Reviews not sealed yet, newest first: summaries in, late and overdue, the next summary due."""
    rows = list(s.exec(select(Review).where(Review.status != "sealed").order_by(col(Review.started_at).desc())
                       .limit(limit)))
    units: dict[str, list[ReviewUnit]] = {}
    if rows:
        for u in s.exec(select(ReviewUnit).where(col(ReviewUnit.incident_id).in_([r.incident_id for r in rows]))):
            units.setdefault(u.incident_id, []).append(u)
    out = []
    for r in rows:
        us = units.get(r.incident_id, [])
        waiting = [u for u in us if u.submitted_at is None]
        nxt = min((u.due_at for u in waiting), default=None)
        out.append({"incident_id": r.incident_id, "title": r.title, "status": r.status, "started_at": r.started_at,
                    "units": len(us), "submitted": len(us) - len(waiting), "late": sum(1 for u in us if u.late_by_s),
                    "overdue": sum(1 for u in waiting if u.due_at <= now), "next_due": nxt,
                    "report_version": r.report_version})
    return out


def page_data(s: Session, incident_id: str) -> dict[str, Any]:
    """What the review page shows besides `detail`: people's names, the returns and sign-off from the audit trail."""
    row = s.get(Review, incident_id)
    if row is None:
        return {}
    steps = list(s.exec(select(AuditEvent).where(AuditEvent.subject == row.subject,
                                                 col(AuditEvent.kind).in_(["review.report.returned",
                                                                           "review.report.signed"]))
                        .order_by(AuditEvent.seq)))
    ids = {row.started_by, row.signed_by or "", *(e.actor for e in steps)}
    ids |= {u.submitted_by or "" for u in s.exec(select(ReviewUnit).where(ReviewUnit.incident_id == incident_id))}
    names = {p.id: p.name for p in s.exec(select(Person).where(col(Person.id).in_([i for i in ids if i])))}
    return {"names": names, "decisions": [{"kind": e.kind.rsplit(".", 1)[1], "at": e.at, "by": e.actor,
                                           "version": e.payload.get("version"), "comments": e.payload.get("comments"),
                                           "lessons": e.payload.get("lessons")} for e in steps]}


def sealed_case_of(s: Session, subject: str) -> dict[str, Any] | None:
    """The sealed case file 一事一档 that holds this subject's audit trail, if there is one."""
    for row in s.exec(select(Review).where(col(Review.archive_sha256).is_not(None))
                      .order_by(col(Review.sealed_at).desc())):
        if subject in (row.subjects or []) or subject in (row.incident_id, row.subject):
            case = s.exec(select(CaseFile.filename, CaseFile.sha256, CaseFile.size)
                          .where(CaseFile.incident_id == row.incident_id)).first()
            if case is not None:
                return {"incident_id": row.incident_id, "filename": case[0], "sha256": case[1], "bytes": case[2],
                        "url": f"/console/reviews/{quote(row.incident_id, safe='')}/casefile"}
    return None
