"""The audit trail: list a subject's events, verify the chains."""
from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter

from api.deps import Anyone, Offset, ReadSessionDep, Supervisor, limit_param
from store.audit import list_events, verify

router = APIRouter(prefix="/api/audit", tags=["audit"])


@router.get("", summary="Audit events, oldest first, with filters")
def events(session: ReadSessionDep, _: Anyone, subject: str | None = None, kind: str | None = None,
           actor: str | None = None, since: datetime | None = None, until: datetime | None = None,
           after_seq: Offset = 0, limit: Annotated[int, limit_param(100000)] = 1000) -> list[dict]:
    rows = list_events(session, subject=subject, kind=kind, actor=actor, since=since, until=until,
                       after_seq=max(after_seq, 0), limit=max(1, min(limit, 100000)))
    return [r.model_dump(mode="json") for r in rows]


@router.get("/verify", summary="Verify the hash chains; names the first bad sequence number")
def verify_chain(session: ReadSessionDep, _: Supervisor, subject: str | None = None) -> dict:
    return verify(session, subject).as_dict()
