"""Directory import: YAML or CSV, validated as a whole, written all-or-nothing.

Every problem is reported as `file:line: path: problem`, and nothing is written while
any problem remains. Import is an upsert by id: importing the same file twice changes
nothing; the posts of an org unit in the file replace its posts. The formats are
described in docs/directory-import.md.
"""
from __future__ import annotations

import csv
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlmodel import Session, delete, func, select

from definitions.yamlsource import YamlDocument, format_loc
from store.directory import (
    ORG_KINDS,
    OrgUnit,
    Person,
    PhoneError,
    Position,
    Post,
    normalize_mobile,
)
from store.roster import DUTY_ROLES, DutyShift

DEMO = Path(__file__).parent / "demo" / "district.yaml"
CATALOGUE = Path(__file__).resolve().parents[1] / "definitions" / "positions.yaml"
PARENT_KIND = {"department": "district", "town": "district", "village": "town"}


class _M(BaseModel):
    # ids and phone numbers written without quotes arrive as ints: take them as text
    model_config = ConfigDict(extra="forbid", coerce_numbers_to_str=True)


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


def _builtin_positions() -> tuple[PositionIn, ...]:
    """The positions call-out plans may name; definitions/positions.yaml is their one source."""
    rows = yaml.safe_load(CATALOGUE.read_text(encoding="utf-8"))["positions"]
    return tuple(PositionIn(**{k: r[k] for k in ("code", "name_zh", "name_en", "leader") if k in r}) for r in rows)


# district_party_secretary 区委书记, district_head 区长, deputy_district_head 副区长, dept_head,
# duty_office_head, town_party_secretary, town_head, town_flood_officer, village_flood_resp, village_head
POSITIONS: tuple[PositionIn, ...] = _builtin_positions()


class DirectoryImportError(ValueError):
    def __init__(self, errors: list[str]):
        self.errors = errors
        super().__init__(f"{len(errors)} problem(s) in the directory file:\n" + "\n".join(errors))


@dataclass
class ImportReport:
    """Items in the file, and how many of them were new or changed (`changed`)."""

    org_units: int = 0
    persons: int = 0
    positions: int = 0
    posts: int = 0
    shifts: int = 0
    changed: dict[str, int] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


Where = Callable[[Sequence], str]  # a location (("persons", 5, "mobile")) -> "file:line"

# ------------------------------------------------------------------ reading


def _read_yaml(path: Path) -> tuple[DirectoryIn | None, list[str], Where]:
    try:
        doc = YamlDocument.read(path, path.name)
    except yaml.YAMLError as exc:
        mark, context = getattr(exc, "problem_mark", None), getattr(exc, "context_mark", None)
        msg = f"{path.name}:{mark.line + 1 if mark else '?'}: YAML syntax: {getattr(exc, 'problem', None) or exc}"
        if context and getattr(exc, "context", None) and (not mark or context.line != mark.line):
            msg += f" ({exc.context} on line {context.line + 1})"
        return None, [msg], None

    def where(loc: Sequence) -> str:
        return f"{path.name}:{doc.line_of(list(loc)) or '?'}"

    try:
        return DirectoryIn.model_validate(doc.data or {}), [], where
    except ValidationError as exc:
        return None, [str(e) for e in doc.errors_from(exc)], where


CSV_COLUMNS = ["org_unit_id", "org_unit_name", "org_unit_kind", "parent_id", "position_code", "person_id",
               "person_name", "mobile", "mobile2", "im_id", "deputy_id", "superior_id"]


def _read_csv(path: Path) -> tuple[DirectoryIn | None, list[str], Where]:
    """One row per post; an org unit or person repeated on later rows must repeat the same values."""
    errors: list[str] = []
    lines: dict[tuple, int] = {}  # (section, index) -> line
    units: dict[str, tuple[UnitIn, int]] = {}
    persons: dict[str, tuple[PersonIn, int]] = {}
    posts: list[PostIn] = []

    def where(loc: Sequence) -> str:
        return f"{path.name}:{lines.get(tuple(loc[:2]), '?')}"

    def add(table: dict, section: str, item: BaseModel, line: int) -> None:
        first = table.get(item.id)
        if first is None:
            table[item.id] = (item, line)
            lines[(section, len(table) - 1)] = line
        elif first[0] != item:
            errors.append(f"{path.name}:{line}: {section} {item.id!r} differs from line {first[1]}")

    with path.open(newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        missing = [c for c in CSV_COLUMNS[:8] if c not in (reader.fieldnames or [])]
        if missing:
            return None, [f"{path.name}:1: missing columns: {', '.join(missing)}"], where
        for row in reader:
            line = reader.line_num

            def get(key: str, row: dict = row) -> str | None:
                return (row.get(key) or "").strip() or None

            try:
                add(units, "org_units", UnitIn(id=get("org_unit_id") or "", name=get("org_unit_name") or "",
                                               kind=get("org_unit_kind") or "", parent=get("parent_id")), line)
                add(persons, "persons", PersonIn(id=get("person_id") or "", name=get("person_name") or "",
                                                 mobile=get("mobile") or "", mobile2=get("mobile2"),
                                                 im_id=get("im_id"), org_unit=get("org_unit_id")), line)
                posts.append(PostIn(position=get("position_code") or "", org_unit=get("org_unit_id") or "",
                                    person=get("person_id") or "", deputy=get("deputy_id"), superior=get("superior_id")))
                lines[("posts", len(posts) - 1)] = line
            except ValidationError as exc:
                for e in exc.errors():
                    errors.append(f"{path.name}:{line}: {format_loc(e['loc'])}: {e['msg']}")
    model = DirectoryIn(org_units=[u for u, _ in units.values()], persons=[p for p, _ in persons.values()], posts=posts)
    return model, errors, where


# ------------------------------------------------------------------ checking


def _check(d: DirectoryIn, session: Session, where: Where) -> tuple[list[str], dict[str, tuple[str, str | None]]]:
    """All problems at once; also each person's normalised (mobile, mobile2)."""
    errors: list[str] = []
    phones: dict[str, tuple[str, str | None]] = {}

    def err(loc: Sequence, msg: str) -> None:
        errors.append(f"{where(loc)}: {format_loc(loc)}: {msg}")

    for section, items, key in (("org_units", d.org_units, "id"), ("persons", d.persons, "id"),
                                ("positions", d.positions, "code")):
        seen: dict[str, int] = {}
        for i, item in enumerate(items):
            k = getattr(item, key)
            if k in seen:
                err((section, i, key), f"{key} {k!r} repeats (first at {section}[{seen[k]}])")
            seen.setdefault(k, i)

    units = {u.id: u for u in session.exec(select(OrgUnit))}
    units.update({u.id: OrgUnit(id=u.id, name=u.name, kind=u.kind, parent_id=u.parent) for u in d.org_units})
    people = set(session.exec(select(Person.id))) | {p.id for p in d.persons}
    positions = set(session.exec(select(Position.code))) | {p.code for p in (*POSITIONS, *d.positions)}

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
        seen, cur = {u.id}, units.get(u.parent or "")  # cycles in parents
        while cur is not None and cur.parent_id:
            if cur.parent_id in seen:
                err(("org_units", i, "parent"), "the parents form a cycle")
                break
            seen.add(cur.parent_id)
            cur = units.get(cur.parent_id)

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

    if d.roster:
        try:
            time.fromisoformat(d.roster.shift_start)
        except ValueError:
            err(("roster", "shift_start"), f"{d.roster.shift_start!r} is not a time like \"08:30\" (quote it)")
        for role, entries in d.roster.rotation.items():
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
    return errors, phones


# ------------------------------------------------------------------ writing


def import_directory(session: Session, path: Path, *, today: date | None = None,
                     tz: str = "Asia/Shanghai") -> ImportReport:
    """Check all of `path` and write it into `session`, or raise DirectoryImportError and write nothing.

    The roster starts on `today` (default: the duty day in progress in `tz`).
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in (".yaml", ".yml"):
        model, errors, where = _read_yaml(path)
    elif suffix == ".csv":
        model, errors, where = _read_csv(path)
    else:
        raise DirectoryImportError([f"{path.name}: unknown file type; use .yaml, .yml or .csv"])
    if model is None:
        raise DirectoryImportError(errors)
    problems, phones = _check(model, session, where)  # a CSV with bad rows: check the rest too
    if errors or problems:
        raise DirectoryImportError(errors + problems)
    if today is None and model.roster:
        now = datetime.now(ZoneInfo(tz))
        start = time.fromisoformat(model.roster.shift_start)
        today = now.date() if now.time() >= start else now.date() - timedelta(days=1)
    report = _write(session, model, phones, today or date.today(), tz)
    report.warnings = shared_numbers(session, model, where)
    return report


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


def _write(session: Session, d: DirectoryIn, phones: dict, today: date, tz: str) -> ImportReport:
    changed = dict.fromkeys(("org_units", "persons", "positions", "posts", "shifts"), 0)
    in_file = {p.code for p in d.positions}
    for p in POSITIONS:  # built-ins the database lacks; the file's own positions win
        if p.code not in in_file and session.get(Position, p.code) is None:
            changed["positions"] += _upsert(session, Position, "code", p.model_dump())
    for p in d.positions:
        changed["positions"] += _upsert(session, Position, "code", p.model_dump())
    order = {"district": 0, "department": 1, "town": 1, "village": 2}
    for u in sorted(d.org_units, key=lambda u: order[u.kind]):  # parents first
        changed["org_units"] += _upsert(session, OrgUnit, "id", {
            "id": u.id, "name": u.name, "kind": u.kind, "parent_id": u.parent,
            "area_code": u.area_code or (u.id if u.id.isdigit() else None), "vertical_line": u.vertical_line})
        session.flush()
    for p in d.persons:
        confirmed = datetime.combine(p.contact_confirmed, time(), ZoneInfo(tz)) if p.contact_confirmed else None
        mobile, mobile2 = phones[p.id]
        changed["persons"] += _upsert(session, Person, "id", {
            "id": p.id, "name": p.name, "mobile": mobile, "mobile2": mobile2, "im_id": p.im_id,
            "org_unit_id": p.org_unit, "contact_confirmed_at": confirmed})
    session.flush()
    by_unit: dict[str, list[PostIn]] = {}
    for post in d.posts:
        by_unit.setdefault(post.org_unit, []).append(post)
    for unit_id, posts in by_unit.items():
        want = sorted((p.position, p.person, p.deputy or "", p.superior or "") for p in posts)
        have = sorted((p.position_code, p.person_id, p.deputy_id or "", p.superior_id or "")
                      for p in session.exec(select(Post).where(Post.org_unit_id == unit_id)))
        if want != have:
            session.exec(delete(Post).where(Post.org_unit_id == unit_id))
            for position, person, deputy, superior in want:
                session.add(Post(position_code=position, org_unit_id=unit_id, person_id=person,
                                 deputy_id=deputy or None, superior_id=superior or None))
            changed["posts"] += len(want)
    shifts = 0
    if d.roster:
        shifts, changed["shifts"] = _roster(session, d.roster, today, tz)
    session.flush()
    return ImportReport(org_units=len(d.org_units), persons=len(d.persons), positions=len(d.positions),
                        posts=len(d.posts), shifts=shifts, changed=changed)


def _roster(session: Session, r: RosterIn, today: date, tz: str) -> tuple[int, int]:
    """24-hour shifts from `today` for `days` days; day i takes entry i mod len of each role.

    Shifts starting in that window are replaced; returns (shifts, shifts written).
    """
    start = datetime.combine(today, time.fromisoformat(r.shift_start), ZoneInfo(tz))
    end = start + timedelta(days=r.days)
    want = set()
    for day in range(r.days):
        s = start + timedelta(days=day)
        for role, entries in r.rotation.items():
            entry = entries[day % len(entries)]
            want |= {(s, role, pid) for pid in ([entry] if isinstance(entry, str) else entry)}
    window = (DutyShift.starts_at >= start, DutyShift.starts_at < end)
    have = {(x.starts_at, x.role, x.person_id) for x in session.exec(select(DutyShift).where(*window))}
    if have == want:
        return len(want), 0
    session.exec(delete(DutyShift).where(*window))
    for s, role, pid in sorted(want):
        session.add(DutyShift(starts_at=s, ends_at=s + timedelta(days=1), role=role, person_id=pid))
    return len(want), len(want)


def load_demo_if_empty(session: Session, today: date | None = None) -> bool:
    """The demo district, when the directory is empty (`make run` on a fresh machine)."""
    if session.exec(select(OrgUnit)).first() is not None:
        return False
    import_directory(session, DEMO, today=today)
    return True


def extend_demo_roster(session: Session, now: datetime | None = None, tz: str = "Asia/Shanghai") -> int:
    """Keep the demo district's duty roster a week ahead; returns the shifts written.

    The demo's roster covers a week from its first load; a stack kept (or restarted) past that
    would have nobody on duty, so handovers and the desk would show no one. Only the demo's own
    roster is extended, and only when it runs out within two days: imported directories keep
    whatever roster their owners gave them.
    """
    model, _, _ = _read_yaml(DEMO)
    if model is None or model.roster is None or not model.org_units:
        return 0
    root = session.get(OrgUnit, model.org_units[0].id)
    if root is None or root.name != model.org_units[0].name:
        return 0  # not the demo district
    now = (now or datetime.now(UTC)).astimezone(ZoneInfo(tz))
    last = session.exec(select(func.max(DutyShift.ends_at))).one()
    last = None if last is None else (last if last.tzinfo else last.replace(tzinfo=UTC)).astimezone(ZoneInfo(tz))
    if last is not None and last > now + timedelta(days=2):
        return 0
    if last is not None and last > now:  # go on from where the roster ends: the shift in progress stays
        day = last.date()
    else:
        day = now.date() if now.time() >= time.fromisoformat(model.roster.shift_start) else now.date() - timedelta(days=1)
    return _roster(session, model.roster, day, tz)[1]
