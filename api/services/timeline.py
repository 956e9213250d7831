"""A subject's audit trail for the replay pages: its events (filtered by kind and actor), the console page
and workflow of its procedure, the recent subjects to choose from, the check of its chain; run with a
database session."""
from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import quote

from sqlmodel import Session, col, func, select

from store.audit import AuditEvent, verify
from workflows.subjects import activation_subject

__all__ = ["procedure_of", "replay_subjects", "timeline", "verify"]  # verify: the check of a subject's chain


def timeline(s: Session, subject: str, kind: str | None, actor: str | None, limit: int = 1000) -> dict[str, Any]:
    base = select(AuditEvent).where(AuditEvent.subject == subject)
    first, last, n = s.exec(select(func.min(AuditEvent.at), func.max(AuditEvent.at), func.count())
                            .where(AuditEvent.subject == subject)).one()
    stmt = base
    if kind:
        stmt = stmt.where(col(AuditEvent.kind).startswith(kind))
    if actor:
        stmt = stmt.where(AuditEvent.actor == actor)
    events = list(s.exec(stmt.order_by(AuditEvent.seq).limit(limit)))
    kinds = list(s.exec(select(AuditEvent.kind).where(AuditEvent.subject == subject).distinct().order_by(AuditEvent.kind)))
    actors = list(s.exec(select(AuditEvent.actor).where(AuditEvent.subject == subject).distinct()
                         .order_by(AuditEvent.actor)))
    from store.types import UtcDateTime

    def aware(v: Any) -> datetime | None:  # aggregates skip the column type on SQLite
        if v is None or isinstance(v, datetime) and v.tzinfo is not None:
            return v
        return UtcDateTime().process_result_value(datetime.fromisoformat(v) if isinstance(v, str) else v, None)

    return {"events": events, "first": aware(first), "last": aware(last), "count": n, "kinds": kinds,
            "actors": actors, "limited": len(events) >= limit}


def procedure_of(s: Session, subject: str) -> tuple[str, str]:
    """(the console page of the subject's procedure, its workflow id), from the subject and its first event."""
    first = s.exec(select(AuditEvent).where(AuditEvent.subject == subject).order_by(AuditEvent.seq).limit(1)).first()
    kind = first.kind.split(".", 1)[0] if first else ""
    wid = (first.workflow_id if first else None) or subject
    for prefix, page in (("activation/", "activations"), ("review/", "reviews")):
        if subject.startswith(prefix):
            return f"/console/{page}/{quote(subject[len(prefix):], safe='')}", wid
    if kind in ("incident", "report"):
        return f"/console/incidents/{quote(subject, safe='')}", wid
    return f"/console/callouts/{quote(subject, safe='')}", wid


def replay_subjects(s: Session, limit: int = 30) -> dict[str, list[dict[str, Any]]]:
    """Recent incidents, activations and reviews for the replay index (call-outs come from the desk)."""
    from store.activations import Activation
    from store.incidents import Incident
    from store.review import Review

    incidents = [{"subject": r.id, "label": r.title or r.id, "at": r.received_at}
                 for r in s.exec(select(Incident).order_by(col(Incident.received_at).desc()).limit(limit))]
    activations = [{"subject": activation_subject(r.id), "label": r.plan_name or r.id, "at": r.activated_at}
                   for r in s.exec(select(Activation).order_by(col(Activation.activated_at).desc()).limit(limit))]
    reviews = [{"subject": r.subject, "label": r.title or r.incident_id, "at": r.started_at}
               for r in s.exec(select(Review).order_by(col(Review.started_at).desc()).limit(limit))]
    return {"incidents": incidents, "activations": activations, "reviews": reviews}
