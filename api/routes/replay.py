"""`GET /api/audit/{subject}/replay?at=…`: the state of a call-out, a reporting chain, an activation or a
review at any instant, from the audit trail alone (the console's replay uses the same `replay_subject`)."""
from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from fastapi import APIRouter, HTTPException
from pydantic import ValidationError
from sqlmodel import Session, col, select

from api.deps import ReadSessionDep, SettingsDep, Supervisor
from definitions.schema.callout import CalloutPlan
from store.directory import Person
from store.replay import (
    EventCache,
    jsonable,
    kind_of_subject,
    load_events,
    replay_activation,
    replay_callout,
    replay_reporting,
    replay_review,
)

router = APIRouter(prefix="/api/audit", tags=["audit"])


def plan_for(definitions_dir: Path, plan: dict | None) -> Any | None:
    """The plan the call-out ran with, if a definition file still has that content (its waits give the deadlines).

    A plan's version is the SHA-256 of its file (definitions/loader.py), so the file is found by
    its hash, and only that one is parsed.
    """
    version = (plan or {}).get("version")
    if not version:
        return None
    for path in sorted((Path(definitions_dir) / "callout").glob("*.y*ml")):
        raw = path.read_bytes()
        if hashlib.sha256(raw).hexdigest()[:16] == version:
            try:
                return CalloutPlan.model_validate(yaml.safe_load(raw))
            except (yaml.YAMLError, ValidationError):
                return None
    return None


def definition_for(definitions_dir: Path, kind: str, version: str | None, schema: Any) -> Any | None:
    """The definition of this kind whose file has this version (its SHA-256), parsed; None if none has."""
    if not version:
        return None
    for path in sorted((Path(definitions_dir) / kind).glob("*.y*ml")):
        raw = path.read_bytes()
        if hashlib.sha256(raw).hexdigest()[:16] == version:
            try:
                return schema.model_validate(yaml.safe_load(raw))
            except (yaml.YAMLError, ValidationError):
                return None
    return None


def replay_other(kind: str, events: list, at: datetime, definitions_dir: Path | None) -> dict[str, Any]:
    """A reporting chain, an activation or a review; their rules give the follow-ups' and the waits' times."""
    if kind == "reporting":
        from definitions.schema.reporting import ReportingRules

        received = next((e.payload for e in events if e.kind == "incident.received"), {})
        rules = definition_for(definitions_dir, "reporting", received.get("rules_version"), ReportingRules) \
            if definitions_dir is not None else None
        return replay_reporting(events, at, rules)
    if kind == "review":
        from definitions.schema.review import ReviewTemplate

        started = next((e.payload for e in events if e.kind == "review.started"), {})
        template = definition_for(definitions_dir, "review", started.get("template_version"), ReviewTemplate) \
            if definitions_dir is not None else None
        return replay_review(events, at, template.policies[template.overdue_policy] if template else None)
    return replay_activation(events, at)


CACHE = EventCache()


def replay_subject(session: Session, subject: str, at: datetime, definitions_dir: Path | None = None,
                   with_names: bool = True, cache: EventCache | None = CACHE) -> dict[str, Any] | None:
    """Replay the subject's events up to `at` and add the persons' names from the directory.

    The events are kept in a small cache between calls (a slider asks for many instants of one
    subject); `cache=None` reads only the events up to `at` from the database."""
    events = cache.events(session, subject) if cache is not None else load_events(session, subject, until=at)
    if not any(e.at <= at for e in events):
        return None
    kind = kind_of_subject(subject, events)
    if kind == "callout":
        chosen = next((e.payload for e in events if e.kind == "callout.plan_chosen"), None)
        plan = plan_for(definitions_dir, {"id": chosen.get("plan"), "version": chosen.get("version")}) \
            if definitions_dir is not None and chosen else None
        state = replay_callout(events, at, plan)
        state["kind"] = "callout"
    else:
        state = replay_other(kind, events, at, definitions_dir)
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
