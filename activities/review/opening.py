"""Opening a review: the case's audit subjects, the participating units and who answers for each,
the read model's first rows and `review.started`."""
from __future__ import annotations

import asyncio
from typing import Any

from sqlmodel import Session, col, select
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.review.view import unit_post
from config import get_settings
from definitions.loader import load_library
from definitions.schema.review import ReviewTemplate
from store.audit import AuditChain, NewEvent, append
from store.db import session_scope
from store.directory import OrgUnit, Person
from store.incidents import Incident
from store.replay import load_events
from store.review import Review, ReviewUnit, linked_callouts, linked_proposals, linked_workorders
from workflows import subjects
from workflows.kit import names
from workflows.review import OpenRequest, OpenResult, ReviewInput, UnitRef, review_subject


activation_subject = subjects.activation_subject


def _has_chain(s: Session, subject: str) -> bool:
    return s.get(AuditChain, subject) is not None


def derive_units(s: Session, subjects: list[str]) -> list[str]:
    """Participating units from the audit trail: the incident's reporting unit and town, and every unit
    named by the activation's events (payload unit_id / unit / units / org_unit_id)."""
    found: list[str] = []

    def add(value: Any) -> None:
        for v in value if isinstance(value, list) else [value]:
            if isinstance(v, dict):
                v = v.get("id") or v.get("unit_id")
            if isinstance(v, str) and v and v not in found:
                found.append(v)

    for subject in subjects:
        for ev in load_events(s, subject):
            p = ev.payload
            if ev.kind == "incident.received":
                add(p.get("reporting_unit_id"))
                add(p.get("town_id"))
            elif ev.kind.split(".", 1)[0] in ("activation", "task", "directive", "dispatch", "group"):
                for key in ("unit_id", "unit", "units", "org_unit_id", "unit_ids"):
                    add(p.get(key))
    known = set(s.exec(select(OrgUnit.id).where(col(OrgUnit.id).in_(found)))) if found else set()
    return [u for u in found if u in known]


def _case_subjects(s: Session, inp: ReviewInput, incident: Incident | None, gaps: list[str]) -> list[str]:
    """The audit subjects the report reads: the incident's chain, the activation's, the linked call-outs."""
    own = subjects.incident_subject(inp.incident_id)
    base = [own] if subjects.kind_of(own) == "incident" and (incident is not None or _has_chain(s, own)) else []
    if not base:
        gaps.append(f"no incident {inp.incident_id!r} in the records: the report has no reporting chain")
    if inp.activation_id:  # the terminated activation itself, or checked by the API (api/services/reviews.py)
        act = activation_subject(inp.activation_id)
        if _has_chain(s, act):
            base.append(act)
            base += linked_proposals(s, inp.activation_id)  # the warning's response proposal it was started from
        else:
            gaps.append(f"no audit trail of {act!r}: the report has no response levels, tasks or directives")
    linked = linked_callouts(s, inp.incident_id) if base else []
    for r in inp.related:  # what the starter named: only what the incident's trail links already
        if r not in linked:
            gaps.append(f"{r!r} is not linked to incident {inp.incident_id!r} in its audit trail: left out")
    base += [r for r in linked if r not in base]
    base += [w for w in (linked_workorders(s, inp.incident_id) if base else []) if w not in base]  # 工单 it came from
    return base


def _unit_refs(s: Session, unit_ids: list[str], template: ReviewTemplate, gaps: list[str]) -> list[UnitRef]:
    """Each unit and who answers for it (the holder of the first contact position, and the deputy)."""
    units: list[UnitRef] = []
    for uid in unit_ids:
        ou = s.get(OrgUnit, uid)
        post = unit_post(s, uid, template.contact_positions) if ou else None
        person = s.get(Person, post.person_id) if post else None
        if ou is None:
            gaps.append(f"unit {uid!r} is not in the directory: nobody is asked for its summary")
        elif person is None:
            gaps.append(f"{ou.name} ({uid}): nobody holds {', '.join(template.contact_positions)}; "
                        "its summary must be recorded by the duty office")
        answerers = [pid for pid in ((post.person_id, post.deputy_id) if post else ()) if pid]
        units.append(UnitRef(id=uid, name=ou.name if ou else uid, contact=person.name if person else "",
                             answerers=answerers))
    return units


def open_review(req: OpenRequest) -> OpenResult:
    inp, settings = req.input, get_settings()
    lib = load_library(settings.definitions_dir)
    loaded = lib.review_template(inp.template)
    if loaded is None:
        raise ApplicationError(f"no review template {inp.template or '(default)'} in {settings.definitions_dir}",
                               type="invalid", non_retryable=True)
    template: ReviewTemplate = loaded.model
    subject = review_subject(inp.incident_id)
    gaps: list[str] = []
    with session_scope() as s:
        incident = s.get(Incident, inp.incident_id)
        base = _case_subjects(s, inp, incident, gaps)
        unit_ids = list(dict.fromkeys(inp.units)) or derive_units(s, base)
        units = _unit_refs(s, unit_ids, template, gaps)
        title = inp.title or (incident.title if incident else "") or inp.incident_id
        due = req.at + template.summary_deadline
        row = s.get(Review, inp.incident_id)
        if row is None:
            row = Review(incident_id=inp.incident_id, workflow_id=req.workflow_id, subject=subject,
                         activation_id=inp.activation_id, title=title, started_by=inp.started_by, started_at=req.at,
                         template_id=template.id, template_version=loaded.version)
            s.add(row)
        row.subjects, row.gaps = [*base, subject], gaps
        s.flush()
        have = {u.unit_id for u in s.exec(select(ReviewUnit).where(ReviewUnit.incident_id == inp.incident_id))}
        for u in units:  # the read model lists the units as soon as the review is open (asked in a moment)
            if u.id not in have:
                s.add(ReviewUnit(incident_id=inp.incident_id, unit_id=u.id, name=u.name, contact=u.contact,
                                 requested_at=req.at, due_at=due))
        s.flush()
        append(s, [NewEvent(subject=subject, kind="review.started", step_id="started", workflow_id=req.workflow_id,
                            run_id=req.run_id, actor=inp.started_by, at=req.at, payload={
                                "incident_id": inp.incident_id, "activation_id": inp.activation_id, "title": title,
                                "units": [u.model_dump() for u in units], "units_given": bool(inp.units),
                                "template": template.id, "template_version": loaded.version,
                                "due_at": due.isoformat(), "subjects": [*base, subject], "gaps": gaps})])
    return OpenResult(title=title, template=template, template_version=loaded.version, units=units,
                      subjects=[*base, subject], gaps=gaps)


@activity.defn(name=names.Review.OPEN)
async def open_(req: OpenRequest) -> OpenResult:
    return await asyncio.to_thread(open_review, req)
