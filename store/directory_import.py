"""Directory import: YAML or CSV, validated as a whole, written all-or-nothing.

Every problem is reported with the file, the line and what is wrong, and nothing is
written while any problem remains. Import is an upsert by id: importing the same file
twice changes nothing; the posts of an org unit in the file replace its posts.
The format is described in docs/directory-import.md.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlmodel import Session, delete, select

from definitions.yamlsource import YamlDocument
from store.directory import ORG_KINDS, OrgUnit, Person, PhoneError, Position, Post, normalize_mobile
from store.roster import DUTY_ROLES, DutyShift

DEMO = Path(__file__).parent / "demo" / "district.yaml"
PARENT_KIND = {"department": "district", "town": "district", "village": "town"}


class _M(BaseModel):
    model_config = ConfigDict(extra="forbid")


class UnitIn(_M):
    id: str = Field(min_length=1)
    name: str = Field(min_length=1)
    kind: str
    parent: str | None = None
    area_code: str | None = None
    vertical_line: bool = False


class PositionIn(_M):
    code: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    name_zh: str
    name_en: str
    leader: bool = False


class PersonIn(_M):
    id: str = Field(min_length=1)
    name: str = Field(min_length=1)
    mobile: str
    mobile2: str | None = None
    im_id: str | None = None
    org_unit: str | None = None
    contact_confirmed: date | None = None


class PostIn(_M):
    position: str
    org_unit: str
    person: str
    deputy: str | None = None
    superior: str | None = None


class RosterIn(_M):
    shift_start: str = "08:30"
    days: int = Field(default=7, ge=1, le=366)
    rotation: dict[str, list[str | list[str]]]


class DirectoryIn(_M):
    org_units: list[UnitIn] = Field(default_factory=list)
    positions: list[PositionIn] = Field(default_factory=list)
    persons: list[PersonIn] = Field(default_factory=list)
    posts: list[PostIn] = Field(default_factory=list)
    roster: RosterIn | None = None


class DirectoryImportError(ValueError):
    def __init__(self, errors: list[str]):
        self.errors = errors
        super().__init__(f"{len(errors)} problem(s) in the directory file:\n" + "\n".join(errors))


@dataclass
class ImportReport:
    org_units: int = 0
    persons: int = 0
    positions: int = 0
    posts: int = 0
    shifts: int = 0
    changed: dict[str, int] = field(default_factory=dict)


# ------------------------------------------------------------------ reading


def _read_yaml(path: Path) -> tuple[DirectoryIn | None, list[str], YamlDocument | None]:
    try:
        doc = YamlDocument.read(path, path.name)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        return None, [f"{path.name}:{mark.line + 1 if mark else '?'}: YAML syntax: {getattr(exc, 'problem', exc)}"], None
    try:
        return DirectoryIn.model_validate(doc.data or {}), [], doc
    except ValidationError as exc:
        return None, [str(e) for e in doc.errors_from(exc)], doc


CSV_COLUMNS = ["org_unit_id", "org_unit_name", "org_unit_kind", "parent_id", "position_code", "person_id",
               "person_name", "mobile", "mobile2", "im_id", "deputy_id", "superior_id"]


def _read_csv(path: Path) -> tuple[DirectoryIn | None, list[str], dict[tuple, int]]:
    """One row per post; returns the model and where each item came from (for line numbers)."""
    errors: list[str] = []
    lines: dict[tuple, int] = {}
    units: dict[str, UnitIn] = {}
    persons: dict[str, PersonIn] = {}
    posts: list[PostIn] = []
    with path.open(newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        missing = [c for c in CSV_COLUMNS[:8] if c not in (reader.fieldnames or [])]
        if missing:
            return None, [f"{path.name}:1: missing columns: {', '.join(missing)}"], lines
        for row in reader:
            line = reader.line_num
            get = lambda k: (row.get(k) or "").strip() or None  # noqa: E731
            try:
                if get("org_unit_id") not in units:
                    units[get("org_unit_id")] = UnitIn(id=get("org_unit_id") or "", name=get("org_unit_name") or "",
                                                       kind=get("org_unit_kind") or "", parent=get("parent_id"))
                    lines[("org_units", len(units) - 1)] = line
                if get("person_id") not in persons:
                    persons[get("person_id")] = PersonIn(id=get("person_id") or "", name=get("person_name") or "",
                                                         mobile=get("mobile") or "", mobile2=get("mobile2"),
                                                         im_id=get("im_id"), org_unit=get("org_unit_id"))
                    lines[("persons", len(persons) - 1)] = line
                posts.append(PostIn(position=get("position_code") or "", org_unit=get("org_unit_id") or "",
                                    person=get("person_id") or "", deputy=get("deputy_id"), superior=get("superior_id")))
                lines[("posts", len(posts) - 1)] = line
            except ValidationError as exc:
                for e in exc.errors():
                    errors.append(f"{path.name}:{line}: {'.'.join(map(str, e['loc']))}: {e['msg']}")
    return DirectoryIn(org_units=list(units.values()), persons=list(persons.values()), posts=posts), errors, lines


# ------------------------------------------------------------------ checking


def _check(d: DirectoryIn, session: Session, where) -> tuple[list[str], dict[str, str], dict[str, str | None]]:
    """All problems at once; also the normalised phone numbers."""
    errors: list[str] = []
    mobiles: dict[str, str] = {}
    mobiles2: dict[str, str | None] = {}

    def err(section: str, i: int, path: str, msg: str) -> None:
        errors.append(f"{where(section, i, path)}: {section}[{i}]{('.' + path) if path else ''}: {msg}")

    def dupes(section: str, items: list, key: str) -> None:
        seen: dict[str, int] = {}
        for i, item in enumerate(items):
            k = getattr(item, key)
            if k in seen:
                err(section, i, key, f"{key} {k!r} repeats (first at {section}[{seen[k]}])")
            seen.setdefault(k, i)

    dupes("org_units", d.org_units, "id")
    dupes("persons", d.persons, "id")
    dupes("positions", d.positions, "code")
    units = {u.id: u for u in session.exec(select(OrgUnit))}
    units.update({u.id: OrgUnit(id=u.id, name=u.name, kind=u.kind, parent_id=u.parent) for u in d.org_units})
    people = set(session.exec(select(Person.id))) | {p.id for p in d.persons}
    positions = set(session.exec(select(Position.code))) | {p.code for p in d.positions}
    for i, u in enumerate(d.org_units):
        if u.kind not in ORG_KINDS:
            err("org_units", i, "kind", f"kind {u.kind!r} is not one of {', '.join(ORG_KINDS)}")
            continue
        if u.kind == "district":
            if u.parent:
                err("org_units", i, "parent", "a district has no parent")
            continue
        parent = units.get(u.parent or "")
        if parent is None:
            err("org_units", i, "parent", f"unknown parent org unit {u.parent!r}")
        elif parent.kind != PARENT_KIND[u.kind]:
            err("org_units", i, "parent", f"a {u.kind} belongs to a {PARENT_KIND[u.kind]}, not to the {parent.kind} {parent.id!r}")
    for i, u in enumerate(d.org_units):  # cycles in parents
        seen, cur = {u.id}, units.get(u.parent or "")
        while cur is not None and cur.parent_id:
            if cur.parent_id in seen:
                err("org_units", i, "parent", "the parents form a cycle")
                break
            seen.add(cur.parent_id)
            cur = units.get(cur.parent_id)
    for i, p in enumerate(d.persons):
        try:
            mobiles[p.id] = normalize_mobile(p.mobile)
        except PhoneError as exc:
            err("persons", i, "mobile", str(exc))
        try:
            mobiles2[p.id] = normalize_mobile(p.mobile2) if p.mobile2 else None
        except PhoneError as exc:
            err("persons", i, "mobile2", str(exc))
        if p.org_unit and p.org_unit not in units:
            err("persons", i, "org_unit", f"unknown org unit {p.org_unit!r}")
    for i, post in enumerate(d.posts):
        if post.position not in positions:
            err("posts", i, "position", f"unknown position {post.position!r}")
        if post.org_unit not in units:
            err("posts", i, "org_unit", f"unknown org unit {post.org_unit!r}")
        for key in ("person", "deputy", "superior"):
            pid = getattr(post, key)
            if pid and pid not in people:
                err("posts", i, key, f"unknown person {pid!r}")
        if post.deputy and post.deputy == post.person:
            err("posts", i, "deputy", "a person cannot be their own deputy")
    if d.roster:
        try:
            time.fromisoformat(d.roster.shift_start)
        except ValueError:
            err("roster", 0, "shift_start", f"{d.roster.shift_start!r} is not a time like 08:30")
        for role, entries in d.roster.rotation.items():
            if role not in DUTY_ROLES:
                errors.append(f"{where('roster', None, 'rotation')}: roster.rotation.{role}: unknown duty role; "
                              f"roles: {', '.join(DUTY_ROLES)}")
            for entry in entries:
                for pid in [entry] if isinstance(entry, str) else entry:
                    if pid not in people:
                        errors.append(f"{where('roster', None, 'rotation')}: roster.rotation.{role}: unknown person {pid!r}")
    return errors, mobiles, mobiles2


# ------------------------------------------------------------------ writing


def import_directory(session: Session, path: Path, *, today: date | None = None,
                     tz: str = "Asia/Shanghai") -> ImportReport:
    path = Path(path)
    if path.suffix.lower() in (".yaml", ".yml"):
        model, errors, doc = _read_yaml(path)

        def where(section, i, key):
            loc = [section] + ([i] if i is not None else []) + ([key] if key else [])
            return f"{path.name}:{doc.line_of(loc) if doc else '?'}"
    elif path.suffix.lower() == ".csv":
        model, errors, lines = _read_csv(path)

        def where(section, i, key):
            return f"{path.name}:{lines.get((section, i), '?')}"
    else:
        raise DirectoryImportError([f"{path.name}: unknown file type; use .yaml, .yml or .csv"])
    if model is None or errors:
        raise DirectoryImportError(errors)
    problems, mobiles, mobiles2 = _check(model, session, where)
    if problems:
        raise DirectoryImportError(problems)
    return _write(session, model, mobiles, mobiles2, today or datetime.now(ZoneInfo(tz)).date(), tz)


def _upsert(session: Session, cls, key: str, values: dict) -> bool:
    row = session.get(cls, values[key])
    if row is None:
        session.add(cls(**values))
        return True
    changed = False
    for k, v in values.items():
        if getattr(row, k) != v:
            setattr(row, k, v)
            changed = True
    return changed


def _write(session: Session, d: DirectoryIn, mobiles: dict, mobiles2: dict, today: date, tz: str) -> ImportReport:
    rep = ImportReport()
    changed = {"org_units": 0, "persons": 0, "positions": 0, "posts": 0}
    for p in d.positions:
        changed["positions"] += _upsert(session, Position, "code", p.model_dump())
    # parents first
    order = {"district": 0, "department": 1, "town": 1, "village": 2}
    for u in sorted(d.org_units, key=lambda u: order[u.kind]):
        changed["org_units"] += _upsert(session, OrgUnit, "id", dict(id=u.id, name=u.name, kind=u.kind, parent_id=u.parent,
                                                                    area_code=u.area_code or (u.id if u.id.isdigit() else None),
                                                                    vertical_line=u.vertical_line))
        session.flush()
    for p in d.persons:
        confirmed = datetime.combine(p.contact_confirmed, time(), ZoneInfo(tz)) if p.contact_confirmed else None
        changed["persons"] += _upsert(session, Person, "id", dict(id=p.id, name=p.name, mobile=mobiles[p.id],
                                                                  mobile2=mobiles2.get(p.id), im_id=p.im_id,
                                                                  org_unit_id=p.org_unit, contact_confirmed_at=confirmed))
    session.flush()
    by_unit: dict[str, list[PostIn]] = {}
    for post in d.posts:
        by_unit.setdefault(post.org_unit, []).append(post)
    for unit_id, posts in by_unit.items():
        want = sorted((p.position, p.person, p.deputy, p.superior) for p in posts)
        have_rows = list(session.exec(select(Post).where(Post.org_unit_id == unit_id)))
        have = sorted((p.position_code, p.person_id, p.deputy_id, p.superior_id) for p in have_rows)
        if want != have:
            session.exec(delete(Post).where(Post.org_unit_id == unit_id))
            for position, person, deputy, superior in want:
                session.add(Post(position_code=position, org_unit_id=unit_id, person_id=person, deputy_id=deputy,
                                 superior_id=superior))
            changed["posts"] += len(want)
    if d.roster:
        rep.shifts = _roster(session, d.roster, today, tz)
    session.flush()
    rep.org_units, rep.persons, rep.positions, rep.posts = len(d.org_units), len(d.persons), len(d.positions), len(d.posts)
    rep.changed = changed
    return rep


def _roster(session: Session, r: RosterIn, today: date, tz: str) -> int:
    """24-hour shifts from `today` for `days` days; day i takes entry i mod len of each role."""
    start = datetime.combine(today, time.fromisoformat(r.shift_start), ZoneInfo(tz))
    end = start + timedelta(days=r.days)
    session.exec(delete(DutyShift).where(DutyShift.starts_at >= start, DutyShift.starts_at < end))
    n = 0
    for day in range(r.days):
        s = start + timedelta(days=day)
        for role, entries in r.rotation.items():
            entry = entries[day % len(entries)]
            for pid in [entry] if isinstance(entry, str) else entry:
                session.add(DutyShift(starts_at=s, ends_at=s + timedelta(days=1), role=role, person_id=pid))
                n += 1
    return n


def load_demo_if_empty(session: Session, today: date | None = None) -> bool:
    """The demo district, when the directory is empty (`make run` on a fresh machine)."""
    if session.exec(select(OrgUnit)).first() is not None:
        return False
    import_directory(session, DEMO, today=today)
    return True
