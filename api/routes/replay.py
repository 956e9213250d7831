"""`GET /api/audit/{subject}/replay?at=…`: a call-out's state at any instant, from the audit trail alone."""
from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi import APIRouter, HTTPException
from sqlmodel import Session, col, select

from api.deps import ReadSessionDep, SettingsDep, Supervisor
from definitions.loader import load_library
from store.directory import Person
from store.replay import jsonable, load_events, replay_callout

router = APIRouter(prefix="/api/audit", tags=["audit"])


def plan_for(definitions_dir: Path, plan: dict | None) -> Any | None:
    """The stored plan, if it still has the version the call-out ran with (its waits give the deadlines)."""
    if not plan:
        return None
    loaded = load_library(definitions_dir).of("callout").get(plan.get("id") or "")
    return loaded.model if loaded is not None and loaded.version == plan.get("version") else None


def replay_subject(session: Session, subject: str, at: datetime, definitions_dir: Path | None = None,
                   with_names: bool = True) -> dict[str, Any] | None:
    """Load the subject's events up to `at`, replay them, add the persons' names from the directory."""
    events = load_events(session, subject, until=at)
    if not events:
        return None
    state = replay_callout(events, at)
    if definitions_dir is not None and state["status"] != "not started":
        plan = plan_for(definitions_dir, state["plan"])
        if plan is not None:
            state = replay_callout(events, at, plan)
    if with_names:
        ids = {t["person_id"] for t in state["targets"] if t["person_id"]}
        ids |= {p for t in state["targets"] for p in t["escalated_to"]}
        stmt = select(Person.id, Person.name)  # a big call-out: one scan beats a long IN list
        names = {pid: name for pid, name in session.exec(
            stmt.where(col(Person.id).in_(list(ids))) if len(ids) <= 1000 else stmt)}
        for t in state["targets"]:
            t["name"] = names.get(t["person_id"] or "", "")
            t["escalated_to_names"] = [names.get(p, "") for p in t["escalated_to"]]
        for d in state["deadlines"]:
            d["name"] = names.get(d["person_id"] or "", "")
    state["subject"] = subject
    return state


@router.get("/{subject}/replay", summary="The state of a call-out at an instant, reconstructed from the audit trail")
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
