"""Read endpoints of the directory and the duty roster."""
from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException
from sqlmodel import select

from api.deps import Anyone, Offset, ReadSessionDep, limit_param
from store.directory import OrgUnit, Person, Position, Post
from store.roster import DUTY_ROLES, on_duty

router = APIRouter(tags=["directory"])


def _person(p: Person) -> dict:
    return p.model_dump(mode="json")


@router.get("/api/directory/org-units", summary="Org units (district, departments, towns, villages)")
def org_units(session: ReadSessionDep, _: Anyone, kind: str | None = None, parent: str | None = None) -> list[dict]:
    stmt = select(OrgUnit)
    if kind:
        stmt = stmt.where(OrgUnit.kind == kind)
    if parent:
        stmt = stmt.where(OrgUnit.parent_id == parent)
    return [u.model_dump() for u in session.exec(stmt.order_by(OrgUnit.id))]


@router.get("/api/directory/positions", summary="Positions")
def positions(session: ReadSessionDep, _: Anyone) -> list[dict]:
    return [p.model_dump() for p in session.exec(select(Position).order_by(Position.code))]


@router.get("/api/directory/persons", summary="Persons")
def persons(session: ReadSessionDep, _: Anyone, org_unit: str | None = None,
            limit: Annotated[int, limit_param(10000)] = 1000, offset: Offset = 0) -> list[dict]:
    stmt = select(Person)
    if org_unit:
        stmt = stmt.where(Person.org_unit_id == org_unit)
    stmt = stmt.order_by(Person.id).offset(max(offset, 0)).limit(max(1, min(limit, 10000)))
    return [_person(p) for p in session.exec(stmt)]


@router.get("/api/directory/persons/{person_id}", summary="One person with the posts they hold")
def person(person_id: str, session: ReadSessionDep, _: Anyone) -> dict:
    p = session.get(Person, person_id)
    if p is None:
        raise HTTPException(404, detail=f"no person {person_id!r}")
    posts = session.exec(select(Post).where(Post.person_id == person_id))
    return {**_person(p), "posts": [x.model_dump() for x in posts]}


@router.get("/api/directory/posts", summary="Posts: a position in an org unit held by a person")
def posts(session: ReadSessionDep, _: Anyone, org_unit: str | None = None, position: str | None = None) -> list[dict]:
    stmt = select(Post)
    if org_unit:
        stmt = stmt.where(Post.org_unit_id == org_unit)
    if position:
        stmt = stmt.where(Post.position_code == position)
    return [x.model_dump() for x in session.exec(stmt.order_by(Post.id))]


@router.get("/api/duty/now", summary="Who is on duty now (1+1+X+X)")
def duty_now(session: ReadSessionDep, _: Anyone, at: datetime | None = None) -> dict:
    at = at or datetime.now(UTC)
    if at.tzinfo is None:
        raise HTTPException(422, detail="at: give a time zone, e.g. 2026-07-01T08:30:00+08:00")
    out: dict[str, list] = {role: [] for role in DUTY_ROLES}
    for shift in on_duty(session, at):
        p = session.get(Person, shift.person_id)
        out.setdefault(shift.role, []).append({"person_id": shift.person_id, "name": p.name if p else "",
                                               "mobile": p.mobile if p else None,
                                               "starts_at": shift.starts_at.isoformat(), "ends_at": shift.ends_at.isoformat()})
    return {"at": at.isoformat(), "roles": {r: {"zh": zh, "en": en} for r, (zh, en) in DUTY_ROLES.items()}, "on_duty": out}
