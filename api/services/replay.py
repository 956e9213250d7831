"""The state of a call-out, a reporting chain, an activation or a review at any instant, from the audit
trail alone: `replay_subject` serves `GET /api/audit/{subject}/replay` and the console's replay."""
from __future__ import annotations

import hashlib
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError
from sqlmodel import Session, col, select

from definitions.schema.callout import CalloutPlan
from store.directory import Person
from store.replay import (
    EventCache,
    kind_of_subject,
    load_events,
    replay_activation,
    replay_callout,
    replay_reporting,
    replay_review,
    replay_workorder,
)

CACHE = EventCache()


def definition_for(definitions_dir: Path, kind: str, version: str | None, schema: Any) -> Any | None:
    """The definition of this kind whose file has this version, parsed; None if none has.

    A definition's version is the SHA-256 of its file (definitions/loader.py), so the file is found by
    its hash, and only that one is parsed."""
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


def plan_for(definitions_dir: Path, plan: dict | None) -> CalloutPlan | None:
    """The plan the call-out ran with, if a definition file still has that content (its waits give the deadlines)."""
    return definition_for(definitions_dir, "callout", (plan or {}).get("version"), CalloutPlan)


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
    if kind == "workorder":
        from definitions.schema.workorders import WorkOrderRules

        received = next((e.payload for e in events if e.kind == "workorder.received"), {})
        rules = definition_for(definitions_dir, "workorders", received.get("rules_version"), WorkOrderRules) \
            if definitions_dir is not None else None
        policies = {"sign": rules.policies[rules.sign_policy], "overdue": rules.policies[rules.overdue_policy]} \
            if rules else None
        return replay_workorder(events, at, policies)
    return replay_activation(events, at)


def _add_names(session: Session, state: dict[str, Any]) -> None:
    """The persons' names from the directory, next to their ids."""
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


def replay_subject(session: Session, subject: str, at: datetime, definitions_dir: Path | None = None,
                   with_names: bool = True, cache: EventCache | None = CACHE) -> dict[str, Any] | None:
    """Replay the subject's events up to `at` and add the persons' names from the directory; None if the
    subject has no event at or before `at`.

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
        _add_names(session, state)
    state["subject"] = subject
    return state
