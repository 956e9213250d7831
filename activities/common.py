"""What every procedure's activities share: the clock, local times, who is on duty, and writing a
procedure's read model with its audit events in one transaction.

One copy of each here; the procedures' modules import them (they were copied per procedure).
"""
from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from sqlmodel import Session, col, select

from activities.delivery import Delivery
from config import get_settings
from store.audit import NewEvent, append
from store.db import session_scope
from store.directory import Person, im_address
from store.roster import on_duty
from workflows.common import Event
from workflows.escalation import Contact

T = TypeVar("T")

def now() -> datetime:
    return datetime.now(UTC)


def local(at: datetime | str | None, fmt: str = "%m月%d日%H:%M") -> str:
    """A time as the duty office reads it (the configured time zone); "—" for none."""
    if at is None:
        return "—"
    if isinstance(at, str):
        at = datetime.fromisoformat(at)
    return at.astimezone(ZoneInfo(get_settings().timezone)).strftime(fmt)


def aware(v: Any) -> datetime | None:
    """A datetime from a view's JSON (ISO text) or a datetime; None stays None."""
    if v is None:
        return None
    return v if isinstance(v, datetime) else datetime.fromisoformat(v)


def contact(p: Person | None) -> Contact | None:
    """A person's addresses; the IM address is the one of the IM provider in use (DingTalk work notifications: the
    person's DingTalk userid; the group robot: their IM id to @-mention)."""
    return Contact(person_id=p.id, name=p.name, mobile=p.mobile, im_id=im_address(p)) if p else None


def english_readers(person_ids: Iterable[str]) -> set[str]:
    """Of `person_ids`, those whose texts are in English (the directory's `language` "en"); everyone else
    reads Chinese only. Only wording the definitions give in English (`message_en`) is sent in English."""
    ids = sorted(set(person_ids))
    if not ids:
        return set()
    with session_scope(write=False) as s:
        return set(s.exec(select(Person.id).where(col(Person.id).in_(ids), Person.language == "en")))


def duty_contacts(s: Session, at: datetime) -> dict[str, Contact]:
    """Who is on duty at `at`, the first person of each duty role."""
    out: dict[str, Contact] = {}
    for shift in on_duty(s, at):
        if shift.role not in out and (c := contact(s.get(Person, shift.person_id))):
            out[shift.role] = c
    return out


def on_duty_as(s: Session, at: datetime, roles: Iterable[str]) -> dict[str, Contact]:
    """The first person on duty in each of `roles` that someone holds, in the order of `roles`."""
    duty = duty_contacts(s, at)
    return {role: duty[role] for role in roles if role in duty}


def sms_each(people: Iterable[Contact], key: Callable[[Contact], str], body: str, **fields: Any) -> list[Delivery]:
    """One SMS of `body` to each of `people` with a mobile number (a summary, a reminder: no answer wanted)."""
    return [Delivery(key=key(c), channel="sms", to=c.mobile or "", body=body, person_id=c.person_id, **fields)
            for c in people if c.mobile]


def audit_events(subject: str, workflow_id: str | None, run_id: str | None, events: Sequence[Event]) -> list[NewEvent]:
    """The workflow's events as audit events of `subject`."""
    return [NewEvent(subject=subject, kind=e.kind, step_id=e.step_id, workflow_id=workflow_id, run_id=run_id,
                     actor=e.actor, channel=e.channel, at=e.at, payload=e.payload) for e in events]


def write_with_events(save: Callable[[Session], Any], events: Sequence[NewEvent]) -> None:
    """Save the procedure's read model and append its audit events, in one transaction: the console and
    the audit trail agree."""
    with session_scope() as s:
        save(s)
        s.flush()
        append(s, list(events))


async def write(save: Callable[[Session], Any], events: Sequence[NewEvent]) -> None:
    """`write_with_events` on a thread: the event loop stays free to heartbeat."""
    await asyncio.to_thread(write_with_events, save, events)


def _read(fn: Callable[[Session], T]) -> T:
    with session_scope(write=False) as s:
        return fn(s)


async def read(fn: Callable[[Session], T]) -> T:
    """Run `fn` in a read-only session on a thread."""
    return await asyncio.to_thread(_read, fn)
