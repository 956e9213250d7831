"""Importing the resource register (store/resources.py): YAML or CSV, checked as a whole, written all-or-nothing.

As the directory import (store/directory_import/): every problem is reported as `file:line: path: problem` and
nothing is written while any problem remains; import is an upsert by id, so importing the same file twice changes
nothing; the stock lines of a depot in the file replace its stock lines. The same record models and checks serve
the duty office's edits through `/api/resources/...` (api/services/resources.py). Formats: docs/resources-import.md.
"""
from __future__ import annotations

import csv
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlmodel import Session, SQLModel, select

from definitions.yamlsource import YamlDocument, format_loc
from store.directory import OrgUnit, Person, PhoneError, normalize_mobile
from definitions.schema.resources import EQUIPMENT_KINDS, EXPERT_FIELDS, TEAM_KINDS
from store.resources import (
    SECTIONS,
    RescueTeam,
    StockLine,
    SupplyDepot,
)
from store.types import now_utc

DEMO = Path(__file__).parent / "demo" / "resources.yaml"
Where = Callable[[Sequence], str]


class _M(BaseModel):
    model_config = ConfigDict(extra="forbid", coerce_numbers_to_str=True)


class TeamIn(_M):
    id: str = Field(min_length=1, max_length=64)
    name: str = Field(min_length=1, max_length=200)
    kind: str
    strength: int = Field(ge=0, le=100000, description="persons the team turns out")
    equipment: list[str] = Field(default_factory=list, max_length=100)
    base: str = Field(default="", max_length=200)
    town: str | None = None
    org_unit: str | None = None
    duty_phone: str | None = None
    leader: str | None = Field(default=None, description="a person of the directory")
    readiness: Literal["ready", "partial", "unready"] = "ready"
    status: Literal["available", "busy"] | None = Field(default=None, description="none: keep (new: available)")


class EquipmentIn(_M):
    id: str = Field(min_length=1, max_length=64)
    name: str = Field(min_length=1, max_length=200)
    kind: str
    quantity: int = Field(default=1, ge=0, le=10**9)
    unit: str = Field(default="台", min_length=1, max_length=16)
    team: str | None = None
    depot: str | None = None
    town: str | None = None


class StockIn(_M):
    item: str = Field(min_length=1, max_length=100)
    quantity: float = Field(ge=0, le=10**12, allow_inf_nan=False)
    unit: str = Field(min_length=1, max_length=16)
    minimum: float = Field(default=0, ge=0, le=10**12, allow_inf_nan=False)
    expiry: date | None = None


class DepotIn(_M):
    id: str = Field(min_length=1, max_length=64)
    name: str = Field(min_length=1, max_length=200)
    place: str = Field(default="", max_length=200)
    town: str | None = None
    org_unit: str | None = None
    keeper: str | None = None
    duty_phone: str | None = None
    stock: list[StockIn] = Field(default_factory=list, max_length=2000)


class ExpertIn(_M):
    id: str = Field(min_length=1, max_length=64)
    name: str = Field(min_length=1, max_length=100)
    field: str
    title: str = Field(default="", max_length=100)
    employer: str = Field(default="", max_length=200)
    person: str | None = None
    mobile: str | None = None
    town: str | None = None


class ShelterIn(_M):
    id: str = Field(min_length=1, max_length=64)
    name: str = Field(min_length=1, max_length=200)
    place: str = Field(min_length=1, max_length=200)
    capacity: int = Field(ge=0, le=10**7)
    town: str | None = None
    kind: Literal["indoor", "outdoor"] = "indoor"
    manager: str | None = None


class RegisterIn(_M):
    teams: list[TeamIn] = Field(default_factory=list)
    equipment: list[EquipmentIn] = Field(default_factory=list)
    depots: list[DepotIn] = Field(default_factory=list)
    experts: list[ExpertIn] = Field(default_factory=list)
    shelters: list[ShelterIn] = Field(default_factory=list)


RECORD_MODELS: dict[str, type[_M]] = {"teams": TeamIn, "equipment": EquipmentIn, "depots": DepotIn,
                                      "experts": ExpertIn, "shelters": ShelterIn}


class RegisterImportError(ValueError):
    def __init__(self, errors: list[str]):
        self.errors = errors
        super().__init__(f"{len(errors)} problem(s) in the register file:\n" + "\n".join(errors))


@dataclass
class RegisterReport:
    """Records in the file per section, and how many of them were new or changed."""

    counts: dict[str, int] = field(default_factory=dict)
    changed: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        """Records, not counting stock lines (a depot's)."""
        return sum(n for section, n in self.counts.items() if section != "stock")


# ---------------------------------------------------------------- checking


Problem = tuple[tuple, str]  # (location in the register, what is wrong)


def check(reg: RegisterIn, session: Session) -> tuple[list[Problem], dict]:
    """Every problem of `reg` against itself and the database; and the normalised phone numbers by location."""
    problems: list[Problem] = []
    phones: dict[tuple, str | None] = {}

    def err(loc: tuple, msg: str) -> None:
        problems.append((loc, msg))

    units = {u.id: u.kind for u in session.exec(select(OrgUnit))}
    people = set(session.exec(select(Person.id)))
    teams = set(session.exec(select(RescueTeam.id))) | {t.id for t in reg.teams}
    depots = set(session.exec(select(SupplyDepot.id))) | {d.id for d in reg.depots}
    for section in SECTIONS:
        seen: dict[str, int] = {}
        for i, rec in enumerate(getattr(reg, section)):
            if rec.id in seen:
                err((section, i, "id"), f"id {rec.id!r} repeats (first at {section}[{seen[rec.id]}])")
            seen.setdefault(rec.id, i)
            if (town := getattr(rec, "town", None)) is not None:
                if town not in units:
                    err((section, i, "town"), f"unknown town {town!r}")
                elif units[town] != "town":
                    err((section, i, "town"), f"{town!r} is a {units[town]}, not a town")
            if (unit := getattr(rec, "org_unit", None)) is not None and unit not in units:
                err((section, i, "org_unit"), f"unknown org unit {unit!r}")
            for key in ("leader", "keeper", "person", "manager"):
                if (pid := getattr(rec, key, None)) is not None and pid not in people:
                    err((section, i, key), f"unknown person {pid!r}")
            for key in ("duty_phone", "mobile"):
                if hasattr(rec, key):
                    raw = getattr(rec, key)
                    try:
                        phones[(section, i, key)] = normalize_mobile(raw) if raw else None
                    except PhoneError as exc:
                        err((section, i, key), str(exc))
    for i, t in enumerate(reg.teams):
        if t.kind not in TEAM_KINDS:
            err(("teams", i, "kind"), f"kind {t.kind!r} is not one of {', '.join(TEAM_KINDS)}")
    for i, e in enumerate(reg.equipment):
        if e.kind not in EQUIPMENT_KINDS:
            err(("equipment", i, "kind"), f"kind {e.kind!r} is not one of {', '.join(EQUIPMENT_KINDS)}")
        if e.team is not None and e.team not in teams:
            err(("equipment", i, "team"), f"unknown team {e.team!r}")
        if e.depot is not None and e.depot not in depots:
            err(("equipment", i, "depot"), f"unknown depot {e.depot!r}")
        if e.team is not None and e.depot is not None:
            err(("equipment", i, "depot"), "equipment is held by a team or kept in a depot, not both")
    for i, d in enumerate(reg.depots):
        items: dict[str, int] = {}
        for j, line in enumerate(d.stock):
            if line.item in items:
                err(("depots", i, "stock", j, "item"), f"item {line.item!r} repeats (first at stock[{items[line.item]}])")
            items.setdefault(line.item, j)
    for i, x in enumerate(reg.experts):
        if x.field not in EXPERT_FIELDS:
            err(("experts", i, "field"), f"field {x.field!r} is not one of {', '.join(EXPERT_FIELDS)}")
        if x.person is None and not x.mobile:
            err(("experts", i, "mobile"), "an expert needs a person of the directory or a mobile number")
    return problems, phones


# ---------------------------------------------------------------- reading


def _read_yaml(path: Path) -> tuple[RegisterIn | None, list[str], Where | None]:
    try:
        doc = YamlDocument.read(path, path.name)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        return None, [f"{path.name}:{mark.line + 1 if mark else '?'}: YAML syntax: {getattr(exc, 'problem', None) or exc}"], None

    def where(loc: Sequence) -> str:
        return f"{path.name}:{doc.line_of(list(loc)) or '?'}"

    if doc.data is not None and not isinstance(doc.data, dict):
        return None, [f"{path.name}:1: the file must be a mapping of sections: {', '.join(SECTIONS)}"], where
    try:
        return RegisterIn.model_validate(doc.data or {}), [], where
    except ValidationError as exc:
        return None, [str(e) for e in doc.errors_from(exc)], where


CSV_SECTIONS = {"team": "teams", "equipment": "equipment", "depot": "depots", "stock": "stock", "expert": "experts",
                "shelter": "shelters"}
LIST_SEPARATORS = (";", "；", "、")


def _read_csv(path: Path) -> tuple[RegisterIn | None, list[str], Where]:
    """One record a row; the `section` column says which (team, equipment, depot, stock, expert, shelter), the other
    columns are the record's fields (empty: not given). A stock row names its depot (`depot`), given in the same
    file; a team's equipment is a list separated by `;`."""
    errors: list[str] = []
    lines: dict[tuple, int] = {}
    data: dict[str, list] = {s: [] for s in SECTIONS}
    stock_rows: list[tuple[int, dict]] = []

    def where(loc: Sequence) -> str:
        return f"{path.name}:{lines.get(tuple(loc[:4]), lines.get(tuple(loc[:2]), '?'))}"

    with path.open(newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        if "section" not in (reader.fieldnames or []):
            return None, [f"{path.name}:1: missing column: section"], where
        for row in reader:
            line = reader.line_num
            cells = {k.strip(): (v or "").strip() for k, v in row.items() if k and k.strip() != "section" and (v or "").strip()}
            if None in row:
                errors.append(f"{path.name}:{line}: more cells than columns")
                continue
            kind = (row.get("section") or "").strip()
            section = CSV_SECTIONS.get(kind)
            if section is None:
                errors.append(f"{path.name}:{line}: section: {kind!r} is not one of {', '.join(CSV_SECTIONS)}")
                continue
            if section == "stock":
                stock_rows.append((line, cells))
                continue
            if section == "teams" and "equipment" in cells:
                text = cells["equipment"]
                for sep in LIST_SEPARATORS[1:]:
                    text = text.replace(sep, LIST_SEPARATORS[0])
                cells["equipment"] = [x.strip() for x in text.split(LIST_SEPARATORS[0]) if x.strip()]
            try:
                rec = RECORD_MODELS[section].model_validate(cells)
            except ValidationError as exc:
                errors += [f"{path.name}:{line}: {format_loc(e['loc'])}: {e['msg']}" for e in exc.errors()]
                continue
            lines[(section, len(data[section]))] = line
            data[section].append(rec)
    depots = {d.id: i for i, d in enumerate(data["depots"])}
    for line, cells in stock_rows:
        depot = cells.pop("depot", None)
        if depot not in depots:
            errors.append(f"{path.name}:{line}: depot: {'a stock row names its depot' if not depot else f'depot {depot!r} is not in this file'}")
            continue
        try:
            item = StockIn.model_validate(cells)
        except ValidationError as exc:
            errors += [f"{path.name}:{line}: {format_loc(e['loc'])}: {e['msg']}" for e in exc.errors()]
            continue
        d = data["depots"][depots[depot]]
        lines[("depots", depots[depot], "stock", len(d.stock))] = line
        d.stock.append(item)
    return RegisterIn(**data), errors, where


# ---------------------------------------------------------------- writing


def _values(section: str, rec: _M, phones: dict, loc: tuple) -> dict:
    """The table row's values of an input record (its location gives its normalised phone numbers)."""
    if section == "teams":
        v = {"id": rec.id, "name": rec.name, "kind": rec.kind, "strength": rec.strength, "equipment": list(rec.equipment),
             "base": rec.base, "town_id": rec.town, "unit_id": rec.org_unit, "duty_phone": phones.get((*loc, "duty_phone")),
             "leader_id": rec.leader, "readiness": rec.readiness}
        if rec.status is not None:
            v["status"] = rec.status
            if rec.status == "available":
                v["busy_with"] = None
        return v
    if section == "equipment":
        return {"id": rec.id, "name": rec.name, "kind": rec.kind, "quantity": rec.quantity, "unit": rec.unit,
                "team_id": rec.team, "depot_id": rec.depot, "town_id": rec.town}
    if section == "depots":
        return {"id": rec.id, "name": rec.name, "place": rec.place, "town_id": rec.town, "unit_id": rec.org_unit,
                "keeper_id": rec.keeper, "duty_phone": phones.get((*loc, "duty_phone"))}
    if section == "experts":
        return {"id": rec.id, "name": rec.name, "field": rec.field, "title": rec.title, "employer": rec.employer,
                "person_id": rec.person, "mobile": phones.get((*loc, "mobile")), "town_id": rec.town}
    return {"id": rec.id, "name": rec.name, "place": rec.place, "capacity": rec.capacity, "town_id": rec.town,
            "kind": rec.kind, "manager_id": rec.manager}


def write(session: Session, reg: RegisterIn, phones: dict) -> RegisterReport:
    """Upsert a checked register; the stock lines of each depot in it replace that depot's lines."""
    report = RegisterReport()
    order = ("teams", "depots", "equipment", "experts", "shelters")  # what equipment refers to first
    from store.resources import TABLES

    for section in order:
        items = getattr(reg, section)
        report.counts[section] = len(items)
        report.changed[section] = 0
        if not items:
            continue
        table: type[SQLModel] = TABLES[section]
        ids = [r.id for r in items]
        have = {row.id: row for row in _rows(session, table, ids)}
        for i, rec in enumerate(items):
            values = _values(section, rec, phones, (section, i))
            row = have.get(rec.id)
            if row is None:
                session.add(table(**values))
                report.changed[section] += 1
                continue
            changed = False
            for k, v in values.items():
                if getattr(row, k) != v:
                    setattr(row, k, v)
                    changed = True
            if changed:
                row.updated_at = now_utc()
                report.changed[section] += 1
        session.flush()
    report.counts["stock"] = sum(len(d.stock) for d in reg.depots)
    report.changed["stock"] = _write_stock(session, reg.depots)
    session.flush()
    return report


def _rows(session: Session, table, ids: list[str]) -> list:
    from sqlmodel import col

    if len(ids) > 500:
        return list(session.exec(select(table)))
    return list(session.exec(select(table).where(col(table.id).in_(ids))))


def _write_stock(session: Session, depots: list[DepotIn]) -> int:
    if not depots:
        return 0
    ids = {d.id for d in depots}
    have: dict[str, dict[str, StockLine]] = {d: {} for d in ids}
    for line in session.exec(select(StockLine)):
        if line.depot_id in ids:
            have[line.depot_id][line.item] = line
    changed = 0
    for d in depots:
        want = {s.item: s for s in d.stock}
        for item, line in list(have[d.id].items()):
            if item not in want:
                session.delete(line)
                changed += 1
        for item, s in want.items():
            values = {"quantity": s.quantity, "unit": s.unit, "minimum": s.minimum, "expiry": s.expiry}
            line = have[d.id].get(item)
            if line is None:
                session.add(StockLine(depot_id=d.id, item=item, **values))
                changed += 1
            elif any(getattr(line, k) != v for k, v in values.items()):
                for k, v in values.items():
                    setattr(line, k, v)
                changed += 1
    return changed


# ---------------------------------------------------------------- the whole import


def import_register(session: Session, path: Path) -> RegisterReport:
    """Check all of `path` and write it into `session`, or raise RegisterImportError and write nothing."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in (".yaml", ".yml"):
        reg, errors, where = _read_yaml(path)
    elif suffix == ".csv":
        reg, errors, where = _read_csv(path)
    else:
        raise RegisterImportError([f"{path.name}: unknown file type; use .yaml, .yml or .csv"])
    if reg is None:
        raise RegisterImportError(errors)
    problems, phones = check(reg, session)
    errors += [f"{where(loc)}: {format_loc(loc)}: {msg}" for loc, msg in problems]
    if errors:
        raise RegisterImportError(errors)
    return write(session, reg, phones)


def load_demo_if_empty(session: Session) -> bool:
    """The demo district's small register, when the register is empty and the demo's towns are there."""
    if session.exec(select(RescueTeam)).first() is not None or session.get(OrgUnit, "330110001") is None:
        return False
    import_register(session, DEMO)
    return True
