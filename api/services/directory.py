"""The directory as the console shows it: the units by kind, one unit's posts (masked numbers), the towns,
people's names; run with a database session."""
from __future__ import annotations

from collections import defaultdict
from typing import Any

from sqlmodel import Session, col, func, select

from store.directory import OrgUnit, Person, Position, Post, mask_mobile


NAMES_PER_QUERY = 900  # (SQLite allows 999 parameters to a statement before 3.32)
WHOLE_DIRECTORY_FROM = 20_000


def names(s: Session, ids: set[str]) -> dict[str, str]:
    """The names of these people (an id not found is left out): a few hundred at a time, or the whole directory in
    one read for a call-out's every target (`WHOLE_DIRECTORY_FROM` ids or more). (Past 1,000 ids it once read the
    whole directory: 200,000 names on every poll of a live board once a 100,000-person call-out escalated, a tenth of
    its API's time.)"""
    wanted = sorted(ids - {""})
    if len(wanted) >= WHOLE_DIRECTORY_FROM:
        return {pid: name for pid, name in s.exec(select(Person.id, Person.name)) if pid in ids}
    found: dict[str, str] = {}
    for part in range(0, len(wanted), NAMES_PER_QUERY):
        found.update(s.exec(select(Person.id, Person.name).where(
            col(Person.id).in_(wanted[part:part + NAMES_PER_QUERY]))).all())
    return found


def mobiles(s: Session, ids: set[str]) -> dict[str, str]:
    """These people's mobile numbers, whole (the console's `phone()` masks them for the roles that may not see them)."""
    ids = {i for i in ids if i and len(ids) <= 1000}
    if not ids:
        return {}
    return dict(s.exec(select(Person.id, Person.mobile).where(col(Person.id).in_(list(ids)))).all())


def towns(s: Session) -> list[OrgUnit]:
    return list(s.exec(select(OrgUnit).where(OrgUnit.kind == "town").order_by(OrgUnit.id)))


def directory(s: Session, unit_id: str | None) -> dict[str, Any]:
    units = list(s.exec(select(OrgUnit).order_by(OrgUnit.kind, OrgUnit.id)))
    by_kind: dict[str, list[OrgUnit]] = defaultdict(list)
    for u in units:
        by_kind[u.kind].append(u)
    posts = []
    unit = s.get(OrgUnit, unit_id) if unit_id else None
    if unit is not None:
        positions = {p.code: p for p in s.exec(select(Position))}
        rows = list(s.exec(select(Post).where(Post.org_unit_id == unit.id).order_by(Post.id)))
        named = names(s, {p for r in rows for p in (r.person_id, r.deputy_id or "", r.superior_id or "")})
        people = {p.id: p for p in s.exec(select(Person).where(col(Person.id).in_([r.person_id for r in rows])))}
        for r in rows:
            pos = positions.get(r.position_code)
            posts.append({"position": pos, "code": r.position_code, "person": named.get(r.person_id, r.person_id),
                          "mobile": mask_mobile(people[r.person_id].mobile) if r.person_id in people else "",
                          "e164": people[r.person_id].mobile if r.person_id in people else "",  # phone() shows it
                          "deputy": named.get(r.deputy_id or "", ""), "superior": named.get(r.superior_id or "", "")})
    children = [u for u in units if unit is not None and u.parent_id == unit.id]
    return {"by_kind": by_kind, "unit": unit, "posts": posts, "children": children,
            "counts": {"units": len(units), "persons": s.exec(select(func.count()).select_from(Person)).one()}}
