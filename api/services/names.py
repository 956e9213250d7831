"""People and units by name: one table of every person's and unit's id → name, kept in memory and read again
from the directory at most every `TTL` seconds, so that any page can show names rather than ids (the actor of
an event, a directive's assignee, who approved a report) without a query of its own.

`refresh_if_stale()` is awaited before each console page (api/console/__init__.py); `who(value)` turns an id,
an actor (`p-…`, `duty_chief:console:…`, `system`) or a subject path (`330110001/p-…`) into words.
"""
from __future__ import annotations

import asyncio
import threading
import time

from sqlmodel import select

from store.db import session_scope
from store.directory import OrgUnit, Person
from workflows.kit.roles import ROLE_NAMES as KIT_ROLES

TTL = 10.0
ROLE_NAMES = {**KIT_ROLES, "system": ("系统", "system")}  # who an actor without a person is, by their token's role
_book: dict[str, str] = {}
_loaded_at = 0.0
_loaded_from = ""  # the database the table was read from (tests, and a changed setting, read again)
_reading = threading.Lock()  # one reader at a time; those who waited find the table fresh


def _database() -> str:
    from config import get_settings

    return get_settings().database


def _load() -> None:
    global _book, _loaded_at, _loaded_from
    source = _database()
    with session_scope() as s:
        book = {pid: name for pid, name in s.exec(select(Person.id, Person.name))}
        book.update({uid: name for uid, name in s.exec(select(OrgUnit.id, OrgUnit.name))})
    _book, _loaded_at, _loaded_from = book, time.monotonic(), source


def _stale() -> bool:
    return time.monotonic() - _loaded_at > TTL or _loaded_from != _database()


async def refresh_if_stale() -> None:
    """Read the table again when stale: once, however many pages ask at the same moment."""
    if _stale():
        await asyncio.to_thread(_load_if_stale)


def _load_if_stale() -> None:
    with _reading:
        if _stale():
            _load()


def who(value: object, lang: str = "zh") -> str:
    """An id, an actor or a `unit/person` path in words; what is not known stays as it is."""
    if value is None or value == "":
        return ""
    text = str(value)
    i = 1 if lang == "en" else 0
    if text in _book:
        return _book[text]
    if text in ROLE_NAMES:
        return ROLE_NAMES[text][i]
    if "/" in text:
        return "/".join(who(part, lang) for part in text.split("/"))
    role, _, label = text.partition(":")
    if role in ROLE_NAMES:
        label = label.removeprefix("console:").removeprefix("admin-token").strip(":")
        return ROLE_NAMES[role][i] + (f"({label})" if label and label not in ("token", "yingji run") else "")
    return text
