"""The audit trail: list a subject's events, verify the chains."""
from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException

from api.deps import Offset, ReadSessionDep, Supervisor, limit_param
from store import refusals
from store.audit import AuditChain, list_events, subject_heads, verify

router = APIRouter(prefix="/api/audit", tags=["audit"])


@router.get("", summary="Audit events, oldest first, with filters (supervisors, the duty chief, the leading leader)")
def events(session: ReadSessionDep, _: Supervisor, subject: str | None = None, kind: str | None = None,
           actor: str | None = None, since: datetime | None = None, until: datetime | None = None,
           after_seq: Offset = 0, limit: Annotated[int, limit_param(100000)] = 1000) -> list[dict]:
    rows = list_events(session, subject=subject, kind=kind, actor=actor, since=since, until=until,
                       after_seq=max(after_seq, 0), limit=max(1, min(limit, 100000)))
    return [r.model_dump(mode="json") for r in rows]


@router.get("/verify", summary="Verify the hash chains; names the first bad sequence number")
def verify_chain(session: ReadSessionDep, _: Supervisor, subject: str | None = None) -> dict:
    return verify(session, subject).as_dict()


@router.get("/refusals", summary="Refused steps, counted per subject, step, caller and hour (latest first); the "
                                   "first of each hour is in the audit subject refusals/<YYYY-MM-DD>")
def refused_steps(session: ReadSessionDep, _: Supervisor, subject: str | None = None, actor: str | None = None,
                  since: datetime | None = None, offset: Offset = 0,
                  limit: Annotated[int, limit_param(10000)] = 100) -> list[dict]:
    if since is not None and since.tzinfo is None:
        raise HTTPException(422, detail="since: give a time zone, e.g. 2026-07-01T08:30:00+08:00")
    rows = refusals.listing(session, subject=subject, actor=actor, since=since, offset=offset,
                            limit=max(1, min(limit, 10000)))
    return [r.model_dump(mode="json", exclude={"id"}) | {"audit_subject": refusals.audit_subject(r.first_at)}
            for r in rows]


@router.get("/{subject:path}", summary="One subject's events in chain order, with filters (kind prefix, actor, "
                                       "channel, time range)")
def subject_events(subject: str, session: ReadSessionDep, _: Supervisor, kind: str | None = None,
                   actor: str | None = None, channel: str | None = None, since: datetime | None = None,
                   until: datetime | None = None, after_seq: Offset = 0,
                   limit: Annotated[int, limit_param(100000)] = 1000) -> dict:
    """Subjects: a call-out (callout-…), an incident (its id), an activation (activation/<id>), a review
    (review/<incident id>). `kind` matches a prefix (`callout.ack`, `report.`, `task.`)."""
    for name, value in (("since", since), ("until", until)):
        if value is not None and value.tzinfo is None:
            raise HTTPException(422, detail=f"{name}: give a time zone, e.g. 2026-07-01T08:30:00+08:00")
    if since is not None and until is not None and until < since:
        raise HTTPException(422, detail="until: before since")
    chain = session.get(AuditChain, subject)
    if chain is None:
        raise HTTPException(404, detail=f"no audit trail for {subject!r}")
    limit = max(1, min(limit, 100000))
    rows = list_events(session, subject=subject, kind=kind, actor=actor, since=since, until=until,
                       after_seq=max(after_seq, 0), limit=None if channel else limit)
    if channel:
        rows = [r for r in rows if r.channel == channel][:limit]
    shards = {c: {"length": n, "head_hash": h} for c, (n, h) in subject_heads(session, subject).items() if c != subject}
    return {"subject": subject, "chain_length": chain.length, "head_hash": chain.head_hash, "shard_chains": shards,
            "events_total": chain.length + sum(c["length"] for c in shards.values()),  # the subject's, every chain
            "count": len(rows),
            "next_after_seq": rows[-1].seq if len(rows) == limit else None,
            "events": [r.model_dump(mode="json") for r in rows]}
