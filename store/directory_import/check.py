"""Checking a directory file as a whole: every problem at once, as `file:line: path: problem`; and the
warnings about numbers that several persons share."""
from __future__ import annotations

from collections.abc import Sequence
from datetime import time

from sqlmodel import Session, select

from definitions.yamlsource import format_loc
from store.directory import ORG_KINDS, OrgUnit, Person, PhoneError, Position, normalize_mobile
from store.directory_import.model import PARENT_KIND, POSITIONS, DirectoryIn, RosterIn, Where
from store.roster import DUTY_ROLES


class _Problems:
    """The problems found so far; called with a location and a message."""

    def __init__(self, where: Where) -> None:
        self.where = where
        self.errors: list[str] = []

    def __call__(self, loc: Sequence, msg: str) -> None:
        self.errors.append(f"{self.where(loc)}: {format_loc(loc)}: {msg}")


def _check(d: DirectoryIn, session: Session, where: Where) -> tuple[list[str], dict[str, tuple[str, str | None]]]:
    """All problems at once; also each person's normalised (mobile, mobile2)."""
    err = _Problems(where)
    _check_unique(d, err)
    units = {u.id: u for u in session.exec(select(OrgUnit))}
    units.update({u.id: OrgUnit(id=u.id, name=u.name, kind=u.kind, parent_id=u.parent) for u in d.org_units})
    people = set(session.exec(select(Person.id))) | {p.id for p in d.persons}
    positions = set(session.exec(select(Position.code))) | {p.code for p in (*POSITIONS, *d.positions)}
    _check_units(d, units, err)
    phones = _check_persons(d, units, err)
    _check_posts(d, units, people, positions, err)
    if d.roster:
        _check_roster(d.roster, people, err)
    return err.errors, phones


def _check_unique(d: DirectoryIn, err: _Problems) -> None:
    for section, items, key in (("org_units", d.org_units, "id"), ("persons", d.persons, "id"),
                                ("positions", d.positions, "code")):
        seen: dict[str, int] = {}
        for i, item in enumerate(items):
            k = getattr(item, key)
            if k in seen:
                err((section, i, key), f"{key} {k!r} repeats (first at {section}[{seen[k]}])")
            seen.setdefault(k, i)


def _check_units(d: DirectoryIn, units: dict[str, OrgUnit], err: _Problems) -> None:
    for i, u in enumerate(d.org_units):
        if u.kind not in ORG_KINDS:
            err(("org_units", i, "kind"), f"kind {u.kind!r} is not one of {', '.join(ORG_KINDS)}")
        elif u.kind == "district":
            if u.parent:
                err(("org_units", i, "parent"), "a district has no parent")
        elif (parent := units.get(u.parent or "")) is None:
            err(("org_units", i, "parent"), f"unknown parent org unit {u.parent!r}")
        elif parent.kind != PARENT_KIND[u.kind]:
            err(("org_units", i, "parent"),
                f"a {u.kind} belongs to a {PARENT_KIND[u.kind]}, not to the {parent.kind} {parent.id!r}")
        if u.duty_phone:
            try:
                normalize_mobile(u.duty_phone)
            except PhoneError as exc:
                err(("org_units", i, "duty_phone"), str(exc))
        seen, cur = {u.id}, units.get(u.parent or "")  # cycles in parents
        while cur is not None and cur.parent_id:
            if cur.parent_id in seen:
                err(("org_units", i, "parent"), "the parents form a cycle")
                break
            seen.add(cur.parent_id)
            cur = units.get(cur.parent_id)


def _check_persons(d: DirectoryIn, units: dict[str, OrgUnit], err: _Problems) -> dict[str, tuple[str, str | None]]:
    phones: dict[str, tuple[str, str | None]] = {}
    for i, p in enumerate(d.persons):
        numbers: list[str | None] = []
        for key in ("mobile", "mobile2"):
            raw = getattr(p, key)
            try:
                numbers.append(normalize_mobile(raw) if raw else None)
            except PhoneError as exc:
                err(("persons", i, key), str(exc))
        if len(numbers) == 2:
            phones[p.id] = (numbers[0], numbers[1])
        if p.org_unit and p.org_unit not in units:
            err(("persons", i, "org_unit"), f"unknown org unit {p.org_unit!r}")
    return phones


def _check_posts(d: DirectoryIn, units: dict[str, OrgUnit], people: set[str], positions: set[str],
                 err: _Problems) -> None:
    for i, post in enumerate(d.posts):
        if post.position not in positions:
            err(("posts", i, "position"), f"unknown position {post.position!r}")
        if post.org_unit not in units:
            err(("posts", i, "org_unit"), f"unknown org unit {post.org_unit!r}")
        for key in ("person", "deputy", "superior"):
            pid = getattr(post, key)
            if pid and pid not in people:
                err(("posts", i, key), f"unknown person {pid!r}")
        if post.deputy and post.deputy == post.person:
            err(("posts", i, "deputy"), "a person cannot be their own deputy")


def _check_roster(r: RosterIn, people: set[str], err: _Problems) -> None:
    try:
        time.fromisoformat(r.shift_start)
    except ValueError:
        err(("roster", "shift_start"), f"{r.shift_start!r} is not a time like \"08:30\" (quote it)")
    for role, entries in r.rotation.items():
        loc = ("roster", "rotation", role)
        if role not in DUTY_ROLES:
            err(loc, f"unknown duty role; roles: {', '.join(DUTY_ROLES)}")
        if not entries:
            err(loc, "the rotation needs at least one entry")
        for j, entry in enumerate(entries):
            group = [entry] if isinstance(entry, str) else entry
            if not group:
                err((*loc, j), "a day needs at least one person")
            for k, pid in enumerate(group):
                if pid not in people:
                    err((*loc, j) if isinstance(entry, str) else (*loc, j, k), f"unknown person {pid!r}")


def shared_numbers(session: Session, d: DirectoryIn, where: Where) -> list[str]:
    """A warning for each number of a person in the file that another person has too (the file or the
    directory): a reply from a shared phone cannot tell whose answer it is unless it carries the message's
    code, and is then held for the duty office to assign. A warning, not a refusal (a couple sharing a
    landline-like mobile in a village is real)."""
    from store.directory import mask_mobile

    owners: dict[str, set[str]] = {}
    for p in session.exec(select(Person)):
        for n in (p.mobile, p.mobile2):
            if n:
                owners.setdefault(n, set()).add(p.id)
    names = {p.id: p.name for p in d.persons}
    out, seen = [], set()
    for i, p in enumerate(d.persons):
        person = session.get(Person, p.id)
        for key, n in (("mobile", person.mobile if person else None), ("mobile2", person.mobile2 if person else None)):
            if not n or n in seen or len(owners.get(n, ())) < 2:
                continue
            seen.add(n)
            who = "、".join(f"{names.get(o) or o}({o})" for o in sorted(owners[n]))
            out.append(f"{where(('persons', i, key)) if where else key}: warning: {mask_mobile(n)} is shared by {who}; "
                       "a reply without its code is held for the duty office to assign / 号码多人共用,"
                       "不带确认码的回复将由值班员指定应答人")
    return out
