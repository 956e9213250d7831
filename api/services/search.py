"""The console's search box: persons (the directory, with their unit and post), incidents, call-outs and
activations matching what was typed. Digits match anywhere in a number (the last four of a mobile find its
person); other text matches part of a name, title, place or id. Numbers come back masked; run with a
database session."""
from __future__ import annotations

from typing import Any

from sqlalchemy import or_
from sqlmodel import Session, col, select

from api.services.errors import ServiceError
from api.services.messagelog import digits_of, like_pattern
from store.activations import Activation
from store.callouts import Callout
from store.directory import OrgUnit, Person, Position, Post, mask_mobile
from store.incidents import Incident

LIMIT = 50
MIN_DIGITS = 3  # fewer digits would match most of the directory


class SearchError(ServiceError):
    """A search that cannot be run (nothing typed, too few digits)."""


def _like_col(column: Any, text: str) -> Any:
    return col(column).like(like_pattern(text), escape="\\")


def persons(s: Session, q: str) -> list[dict[str, Any]]:
    digits = digits_of(q)
    if digits:
        where = or_(_like_col(Person.mobile, digits), _like_col(Person.mobile2, digits))
    else:
        where = or_(_like_col(Person.name, q), Person.id == q)
    people = list(s.exec(select(Person).where(where).order_by(Person.name, Person.id).limit(LIMIT)))
    ids = [p.id for p in people]
    posts = list(s.exec(select(Post).where(col(Post.person_id).in_(ids)))) if ids else []
    units = {u.id: u.name for u in s.exec(select(OrgUnit).where(col(OrgUnit.id).in_(
        {p.org_unit_id for p in posts} | {p.org_unit_id for p in people if p.org_unit_id})))} if ids else {}
    positions = {p.code: p for p in s.exec(select(Position))} if posts else {}
    out = []
    for p in people:
        held = [{"unit": units.get(r.org_unit_id, r.org_unit_id), "unit_id": r.org_unit_id,
                 "position": positions[r.position_code].name_zh if r.position_code in positions else r.position_code,
                 "position_en": positions[r.position_code].name_en if r.position_code in positions else r.position_code}
                for r in posts if r.person_id == p.id]
        out.append({"id": p.id, "name": p.name, "mobile": mask_mobile(p.mobile),
                    "unit": units.get(p.org_unit_id or "", ""), "unit_id": p.org_unit_id, "posts": held})
    return out


def incidents(s: Session, q: str) -> list[dict[str, Any]]:
    digits = digits_of(q)
    where = (or_(_like_col(Incident.id, digits), _like_col(Incident.reporter_phone, digits)) if digits else
             or_(_like_col(Incident.id, q), _like_col(Incident.title, q), _like_col(Incident.place, q)))
    rows = s.exec(select(Incident).where(where).order_by(col(Incident.received_at).desc()).limit(LIMIT))
    return [{"id": r.id, "title": r.title, "place": r.place, "received_at": r.received_at, "status": r.status,
             "severity": r.severity} for r in rows]


def callouts(s: Session, q: str) -> list[dict[str, Any]]:
    rows = s.exec(select(Callout).where(or_(_like_col(Callout.id, q), _like_col(Callout.title, q)))
                  .order_by(col(Callout.started_at).desc()).limit(LIMIT))
    return [{"id": r.id, "title": r.title, "started_at": r.started_at, "status": r.status, "level": r.level,
             "drill": r.drill} for r in rows]


def activations(s: Session, q: str) -> list[dict[str, Any]]:
    rows = s.exec(select(Activation).where(or_(_like_col(Activation.id, q), _like_col(Activation.plan_name, q),
                                               _like_col(Activation.incident_id, q)))
                  .order_by(col(Activation.activated_at).desc()).limit(LIMIT))
    return [{"id": r.id, "plan_name": r.plan_name, "incident_id": r.incident_id, "level": r.level,
             "status": r.status, "activated_at": r.activated_at} for r in rows]


def search(s: Session, q: str) -> dict[str, Any]:
    """Everything matching `q`. Raises SearchError 422 for an empty query or fewer than 3 digits."""
    q = (q or "").strip()[:100]
    if not q:
        raise SearchError(422, "请输入要查找的姓名、电话或事件 / type a name, a number or an incident")
    digits = digits_of(q)
    if digits and len(digits) < MIN_DIGITS:
        raise SearchError(422, f"电话号码至少输入{MIN_DIGITS}位数字 / at least {MIN_DIGITS} digits of a number")
    found = {"persons": persons(s, q)}
    if digits:  # a number names a person (or an incident's reporter), not a call-out
        found.update(incidents=incidents(s, q), callouts=[], activations=[])
    else:
        found.update(incidents=incidents(s, q), callouts=callouts(s, q), activations=activations(s, q))
    return {"q": q, **found, "count": sum(len(v) for v in found.values())}
