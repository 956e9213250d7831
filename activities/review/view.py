"""The review's read model (store/review/), upserted from the workflow's view with its audit events."""
from __future__ import annotations

from sqlmodel import Session, col, select
from temporalio import activity

from activities.common import audit_events, write
from activities.common import now as _now
from store.audit import NewEvent
from store.directory import Post
from store.review import Review, ReviewUnit
from workflows.kit import names
from workflows.review import RecordRequest, ReviewView


def unit_post(s: Session, unit_id: str, positions: list[str]) -> Post | None:
    """Who answers for a unit: the holder of the first of `positions` in it."""
    posts = list(s.exec(select(Post).where(Post.org_unit_id == unit_id, col(Post.position_code).in_(positions))
                        .order_by(Post.id)))
    posts.sort(key=lambda p: positions.index(p.position_code))
    return posts[0] if posts else None


def save_view(s: Session, v: ReviewView) -> Review:
    row = s.get(Review, v.incident_id)
    if row is None:
        row = Review(incident_id=v.incident_id, workflow_id=v.workflow_id, subject=v.subject, started_at=v.started_at)
        s.add(row)
    row.activation_id, row.title, row.status, row.started_by = v.activation_id, v.title, v.status, v.started_by
    row.template_id, row.template_version, row.subjects, row.gaps = v.template, v.template_version, v.subjects, v.gaps
    row.report_version = v.reports[-1].version if v.reports else 0
    signed = next((x for x in reversed(v.signoffs) if x.decision == "approve"), None)
    row.signed_by, row.signed_at = (signed.by, signed.at) if signed else (None, None)
    if v.archive is not None:
        row.archive_sha256, row.sealed_at = v.archive.sha256, v.archive.sealed_at
    row.updated_at = _now()
    s.flush()
    have = {u.unit_id: u for u in s.exec(select(ReviewUnit).where(ReviewUnit.incident_id == v.incident_id))}
    for u in v.units:
        r = have.get(u.unit_id) or ReviewUnit(incident_id=v.incident_id, unit_id=u.unit_id, requested_at=u.requested_at,
                                              due_at=u.due_at)
        r.name, r.contact, r.state, r.due_at = u.name, u.contact, u.state, u.due_at
        r.submitted_at, r.submitted_by, r.late_by_s, r.version = u.submitted_at, u.submitted_by, u.late_by_s, u.version
        r.summary = u.summary.model_dump(mode="json") if u.summary else None
        r.escalation = u.escalation
        s.add(r)
    return row


async def _write(req: RecordRequest, extra: list[NewEvent]) -> None:
    """The review's view and the request's events (and `extra`), in one transaction."""
    await write(lambda s: save_view(s, req.view),
                [*audit_events(req.view.subject, req.workflow_id, req.run_id, req.events), *extra])


@activity.defn(name=names.Review.RECORD)
async def record(req: RecordRequest) -> None:
    await _write(req, [])
