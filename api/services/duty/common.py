"""What the duty day's services share: the DutyError (a status and a message), the duty definitions, audit
appends, row reads, workflow steps with their refusals explained, and the signed links people open."""
from __future__ import annotations

from datetime import UTC, datetime

from sqlmodel import col, select
from temporalio.client import Client

from api.services.errors import ServiceError
from api.services.steps import Refused, run_step
from definitions.loader import Library
from definitions.schema.duty import DutySettings
from store.audit import AuditEvent, NewEvent, append
from store.db import session_scope
from store.directory import Person
from store.links import consume, is_used
from workflows.common import CONFLICT, FORBIDDEN, INVALID

STATUS = {FORBIDDEN: 403, CONFLICT: 409, INVALID: 422}


class DutyError(ServiceError):
    """A duty procedure refused to start or take a step."""


def duty_settings(lib: Library) -> DutySettings:
    settings = lib.duty()
    if settings is None:
        errors = "; ".join(str(e) for e in lib.errors[:5]) or "definitions/duty/*.yaml is missing a section"
        raise DutyError(503, f"the duty definitions are not usable: {errors}")
    return settings


def audit(subject: str, kind: str, step: str, actor: str, payload: dict, workflow_id: str | None = None) -> None:
    with session_scope() as s:
        append(s, [NewEvent(subject=subject, kind=kind, step_id=f"{step}/{datetime.now(UTC).timestamp()}", actor=actor,
                            workflow_id=workflow_id, payload=payload)])


async def update_step(client: Client, subject: str, workflow_id: str, update, req, result_type, what: str):
    """The step through api/services/steps.py:run_step, its refusal as a DutyError."""
    try:
        return await run_step(client, workflow_id=workflow_id, subject=subject, refused_kind=f"{what}.refused",
                              action=update.__name__, update=update, req=req, result_type=result_type,
                              statuses=STATUS, ended=f"the {what} {subject!r} has ended; nothing more can be recorded")
    except Refused as r:
        raise DutyError(r.status, r.why) from r


def get_row(model, key):
    with session_scope(write=False) as s:
        return s.get(model, key)


def events(subject: str, prefix: str = "", limit: int = 500) -> list[dict]:
    with session_scope(write=False) as s:
        rows = s.exec(select(AuditEvent).where(AuditEvent.subject == subject, col(AuditEvent.kind).startswith(prefix))
                      .order_by(AuditEvent.seq).limit(limit))
        return [{"kind": e.kind, "at": e.at.isoformat(), "actor": e.actor, "channel": e.channel, "payload": e.payload}
                for e in rows]


def link_used(data: dict) -> bool:
    """Whether this signed link (its token's data) has been used already."""
    with session_scope(write=False) as s:
        return is_used(s, data)


def use_link(data: dict) -> None:
    """Mark the signed link used (LinkError "used" if it was, e.g. answered twice at once)."""
    with session_scope() as s:
        consume(s, data)


def person(person_id: str) -> Person | None:
    return get_row(Person, person_id)
