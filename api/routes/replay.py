"""`GET /api/audit/{subject}/replay?at=…`: the state of a call-out, a reporting chain, an activation or a
review at any instant, from the audit trail alone (`api.services.replay.replay_subject`, which the console's
replay uses too)."""
from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, HTTPException

from api.deps import ReadSessionDep, SettingsDep, Supervisor
from api.services.replay import replay_subject
from store.replay import jsonable

router = APIRouter(prefix="/api/audit", tags=["audit"])


@router.get("/{subject:path}/replay",
            summary="The state of a call-out, reporting chain, activation or review at an instant, from the audit trail")
def replay(subject: str, session: ReadSessionDep, settings: SettingsDep, _: Supervisor, at: datetime | None = None,
           targets: bool = True, state: str | None = None, tier: str | None = None) -> dict:
    at = at or datetime.now(UTC)
    if at.tzinfo is None:
        raise HTTPException(422, detail="at: give a time zone, e.g. 2026-07-01T08:30:00+08:00")
    out = replay_subject(session, subject, at, settings.definitions_dir)
    if out is None:
        raise HTTPException(404, detail=f"no audit events of {subject!r} at or before {at.isoformat()}")
    if not targets:
        out["targets"] = []
    else:
        out["targets"] = [t for t in out["targets"]
                          if (state is None or t["state"] == state) and (tier is None or t["tier"] == tier)]
    return jsonable(out)
