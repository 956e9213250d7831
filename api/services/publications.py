"""Publications below orange 精准发布 (issue 20): what was sent to whom and what the gateway reported.

Read by `GET /api/publications[/{id}]` and the console's publication page alike; the counts are the outbox's
(store.publications.tally), so a delivery report that arrived after the workflow ended counts too.
"""
from __future__ import annotations

from typing import Any

from pydantic import Field
from sqlmodel import Session, col, select

from api.services.errors import ServiceError
from api.services.shapes import Out, Timestamp
from store.publications import Publication, messages, tally


class PublicationError(ServiceError):
    """A publication that cannot be shown."""


class PublicationOut(Out):
    id: str
    warning_id: str
    plan_id: str
    level: str
    purpose: str = Field(description="publish | update | cancel (解除)")
    title: str
    drill: bool
    status: str = Field(description="running | completed | timed_out | superseded")
    superseded_by: str | None = None
    started_at: Timestamp
    ended_at: Timestamp | None = None


class PublicationDetailOut(PublicationOut):
    counts: dict[str, Any] = Field(description="persons, sent, delivered, failed, pending, rate (delivered / sent), "
                                               "per_tier, failed_list (by name)")
    messages: list[dict[str, Any]]


def _row(p: Publication) -> dict[str, Any]:
    return {"id": p.id, "warning_id": p.warning_id, "plan_id": p.plan_id, "level": p.level, "purpose": p.purpose,
            "title": p.title, "drill": p.drill, "status": p.status, "superseded_by": p.superseded_by,
            "started_at": p.started_at.isoformat(), "ended_at": p.ended_at.isoformat() if p.ended_at else None}


def publication_list(session: Session, limit: int = 50, warning_ids: list[str] | None = None) -> list[dict[str, Any]]:
    stmt = select(Publication).order_by(col(Publication.started_at).desc()).limit(limit)
    if warning_ids is not None:
        stmt = stmt.where(col(Publication.warning_id).in_(warning_ids))
    return [_row(p) for p in session.exec(stmt)]


def publication_detail(session: Session, publication_id: str) -> dict[str, Any]:
    """One publication with its counts and every message; PublicationError 404 when there is none."""
    p = session.get(Publication, publication_id)
    if p is None:
        raise PublicationError(404, f"no publication {publication_id!r} / 无此预警发布")
    rows = messages(session, publication_id)
    return {**_row(p), "counts": tally(rows),
            "messages": [{"id": m.id, "person_id": m.person_id, "name": (m.meta or {}).get("label") or m.person_id,
                          "tier": (m.meta or {}).get("tier"), "channel": m.channel, "status": m.status,
                          "error": m.error, "sent_at": m.sent_at.isoformat() if m.sent_at else None,
                          "updated_at": m.updated_at.isoformat() if m.updated_at else None} for m in rows]}
