"""The directory: org units, persons, positions and the posts that join them.

A *post* is one position in one org unit held by one person, with an optional
deputy and superior (both persons). Call-out plans name positions; resolving a
plan means finding the posts of those positions in the warning's area.
"""
from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

import phonenumbers
from sqlmodel import Field, Session, SQLModel, select

from store.types import utc_column

ORG_KINDS = ("district", "department", "town", "village")


class OrgUnit(SQLModel, table=True):
    __tablename__ = "org_unit"
    id: str = Field(primary_key=True, description="GB/T 2260-style area code for areas; e.g. D01 for departments")
    name: str
    kind: str = Field(index=True, description="district | department | town | village")
    parent_id: str | None = Field(default=None, foreign_key="org_unit.id", index=True)
    area_code: str | None = Field(default=None, index=True)
    vertical_line: bool = Field(default=False, description="department with a city-level line (垂直管理)")
    duty_phone: str | None = Field(default=None, description="the unit's 24-hour duty phone 24小时值班电话, E.164")


class Person(SQLModel, table=True):
    __tablename__ = "person"
    id: str = Field(primary_key=True)
    name: str
    mobile: str = Field(index=True, description="E.164")
    mobile2: str | None = Field(default=None, index=True)
    im_id: str | None = None
    dingtalk_user_id: str | None = Field(default=None, description="the person's DingTalk userid (工作通知)")
    org_unit_id: str | None = Field(default=None, foreign_key="org_unit.id", index=True)
    contact_confirmed_at: datetime | None = Field(default=None, sa_column=utc_column())
    language: str = Field(default="zh", sa_column_kwargs={"server_default": "zh"},
                          description="the language of the texts the person receives: zh | en (LANGUAGES)")


def im_address(p: Person) -> str | None:
    """The person's address on the IM provider in use: their DingTalk userid with work notifications
    (GATEWAY_IM=dingtalk), else their IM id (the group robot @-mentions it)."""
    from config import get_settings

    return p.dingtalk_user_id if get_settings().im_gateway == "dingtalk" else p.im_id


LANGUAGES = ("zh", "en")
"""zh: Chinese only (everyone, unless told otherwise); en: the definitions' English text where they give one."""


class Position(SQLModel, table=True):
    __tablename__ = "position"
    code: str = Field(primary_key=True)
    name_zh: str
    name_en: str
    leader: bool = Field(default=False, description="leaders are notified before the rest")


class Post(SQLModel, table=True):
    __tablename__ = "post"
    id: int | None = Field(default=None, primary_key=True)
    position_code: str = Field(foreign_key="position.code", index=True)
    org_unit_id: str = Field(foreign_key="org_unit.id", index=True)
    person_id: str = Field(foreign_key="person.id", index=True)
    deputy_id: str | None = Field(default=None, foreign_key="person.id")
    superior_id: str | None = Field(default=None, foreign_key="person.id")


class PhoneError(ValueError):
    pass


def normalize_mobile(raw: str, region: str = "CN") -> str:
    """Validate and normalise a phone number to E.164 (+8613800138000)."""
    try:
        number = phonenumbers.parse(str(raw).strip(), region)
    except phonenumbers.NumberParseException as exc:
        raise PhoneError(f"not a phone number: {raw!r} ({exc})") from exc
    if not phonenumbers.is_valid_number(number):
        raise PhoneError(f"not a valid phone number: {raw!r}")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


_GENERIC_UNITS = ("村(社区)", "村(社区)", "乡镇(街道)", "乡镇(街道)")  # a position's name for any unit of its kind


def post_label(unit_name: str, position_zh: str) -> str:
    """A post as people say it: the unit's name, then the post without the generic unit its name starts with
    (东山村 + 村(社区)防汛责任人 → "东山村 防汛责任人", not "东山村村(社区)防汛责任人")."""
    for generic in _GENERIC_UNITS:
        if position_zh.startswith(generic) and len(position_zh) > len(generic):
            position_zh = position_zh[len(generic):]
            break
    return f"{unit_name} {position_zh}".strip()


def mask_mobile(e164: str | None) -> str:
    if not e164:
        return ""
    return e164[:-8] + "****" + e164[-4:] if len(e164) > 8 else "****"


# ---------------------------------------------------------------- queries


def descendants(session: Session, unit_ids: Iterable[str]) -> list[OrgUnit]:
    """The given units and everything below them."""
    found: dict[str, OrgUnit] = {}
    frontier = list(set(unit_ids))
    for unit in session.exec(select(OrgUnit).where(OrgUnit.id.in_(frontier))):
        found[unit.id] = unit
    while frontier:
        children = session.exec(select(OrgUnit).where(OrgUnit.parent_id.in_(frontier))).all()
        frontier = [c.id for c in children if c.id not in found]
        for c in children:
            found[c.id] = c
    return list(found.values())


def district(session: Session) -> OrgUnit | None:
    return session.exec(select(OrgUnit).where(OrgUnit.kind == "district")).first()


def units_for_areas(session: Session, codes: Iterable[str], descs: Iterable[str]) -> list[OrgUnit]:
    """Towns/streets named by CAP geocodes or area descriptions.

    An area naming the whole district (全区, 全市, or the district's own code)
    covers every town. Village codes select their town.
    """
    codes = {c.strip() for c in codes if c and c.strip()}
    descs = [d.strip() for d in descs if d and d.strip()]
    dist = district(session)
    towns = session.exec(select(OrgUnit).where(OrgUnit.kind == "town")).all()
    whole = any(d in ("全区", "全區", "全市", "全县", "全縣", "全境") or (dist and dist.name in d and not any(t.name in d for t in towns)) for d in descs)
    if dist and (dist.id in codes or (dist.area_code and dist.area_code in codes)):
        whole = True
    if whole:
        return list(towns)
    chosen: dict[str, OrgUnit] = {}
    by_code = {t.area_code or t.id: t for t in towns}
    for code in codes:
        if code in by_code:
            chosen[by_code[code].id] = by_code[code]
        else:  # a village code (longer) selects its town
            for tcode, town in by_code.items():
                if code.startswith(tcode) and len(code) > len(tcode):
                    chosen[town.id] = town
    for d in descs:
        for t in towns:
            if t.name in d:
                chosen[t.id] = t
    return list(chosen.values())
