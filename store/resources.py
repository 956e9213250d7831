"""The resource register 应急资源: rescue teams, equipment, supply depots with their stock lines, experts and
shelters (避难场所). Seeds 003 篇四 and 004: personnel, equipment and supplies entered and kept up to date.

Records are keyed by the ids their owners give them (like the directory's); they are written by the import
(store/resources_import.py, all-or-nothing) and by the duty office through `/api/resources/...`
(api/services/resources.py). `stock_alerts` flags a stock line below its minimum or past its expiry date.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import UniqueConstraint
from sqlmodel import Field, Session, SQLModel, col, select

from store.types import json_column, now_utc, utc_column

# the kinds of team and equipment, the experts' fields: definitions/schema/resources.py (a plan names team kinds)
READINESS = ("ready", "partial", "unready")  # 在岗待命, 部分到岗, 不能出动
TEAM_STATUS = ("available", "busy")
SECTIONS = ("teams", "equipment", "depots", "experts", "shelters")


class RescueTeam(SQLModel, table=True):
    __tablename__ = "rescue_team"
    id: str = Field(primary_key=True)
    name: str
    kind: str = Field(index=True, description="TEAM_KINDS")
    strength: int = Field(description="persons the team turns out")
    equipment: list[str] = Field(default_factory=list, sa_column=json_column(nullable=False))
    base: str = Field(default="", description="where the team is stationed 驻地")
    town_id: str | None = Field(default=None, foreign_key="org_unit.id", index=True)
    unit_id: str | None = Field(default=None, foreign_key="org_unit.id", description="the unit it belongs to")
    duty_phone: str | None = Field(default=None, description="24-hour duty phone, E.164")
    leader_id: str | None = Field(default=None, foreign_key="person.id")
    readiness: str = Field(default="ready", description="READINESS")
    status: str = Field(default="available", index=True, description="available | busy")
    busy_with: str | None = Field(default=None, description="the activation it is dispatched to")
    busy_since: datetime | None = Field(default=None, sa_column=utc_column())
    confirmed_at: datetime | None = Field(default=None, sa_column=utc_column(), description=(
        "last confirmed by its owner in the yearly contact confirmation round (store/duty.py confirm_contact)"))
    updated_at: datetime = Field(default_factory=now_utc, sa_column=utc_column(nullable=False))


class Equipment(SQLModel, table=True):
    __tablename__ = "equipment"
    id: str = Field(primary_key=True)
    name: str
    kind: str = Field(index=True, description="EQUIPMENT_KINDS")
    quantity: int = 1
    unit: str = Field(default="台", description="台, 艘, 辆, 套 …")
    team_id: str | None = Field(default=None, foreign_key="rescue_team.id", index=True)
    depot_id: str | None = Field(default=None, foreign_key="supply_depot.id", index=True)
    town_id: str | None = Field(default=None, foreign_key="org_unit.id", index=True)
    updated_at: datetime = Field(default_factory=now_utc, sa_column=utc_column(nullable=False))


class SupplyDepot(SQLModel, table=True):
    __tablename__ = "supply_depot"
    id: str = Field(primary_key=True)
    name: str
    place: str = ""
    town_id: str | None = Field(default=None, foreign_key="org_unit.id", index=True)
    unit_id: str | None = Field(default=None, foreign_key="org_unit.id", description="the unit that keeps it")
    keeper_id: str | None = Field(default=None, foreign_key="person.id")
    duty_phone: str | None = None
    confirmed_at: datetime | None = Field(default=None, sa_column=utc_column(), description=(
        "last confirmed by its owner in the yearly contact confirmation round (store/duty.py confirm_contact)"))
    updated_at: datetime = Field(default_factory=now_utc, sa_column=utc_column(nullable=False))


class StockLine(SQLModel, table=True):
    __tablename__ = "stock_line"
    __table_args__ = (UniqueConstraint("depot_id", "item", name="uq_stock_line"),)
    id: int | None = Field(default=None, primary_key=True)
    depot_id: str = Field(foreign_key="supply_depot.id", index=True)
    item: str = Field(index=True)
    quantity: float
    unit: str
    minimum: float = 0
    expiry: date | None = None


class Expert(SQLModel, table=True):
    __tablename__ = "expert"
    id: str = Field(primary_key=True)
    name: str
    field: str = Field(index=True, description="EXPERT_FIELDS")
    title: str = Field(default="", description="职称, e.g. 高级工程师")
    employer: str = ""
    person_id: str | None = Field(default=None, foreign_key="person.id")
    mobile: str | None = Field(default=None, description="E.164; the person's own when person_id is given")
    town_id: str | None = Field(default=None, foreign_key="org_unit.id", index=True)
    confirmed_at: datetime | None = Field(default=None, sa_column=utc_column(), description=(
        "last confirmed by its owner in the yearly contact confirmation round (store/duty.py confirm_contact)"))
    updated_at: datetime = Field(default_factory=now_utc, sa_column=utc_column(nullable=False))


class Shelter(SQLModel, table=True):
    __tablename__ = "shelter"
    id: str = Field(primary_key=True)
    name: str
    place: str
    capacity: int = Field(description="persons")
    town_id: str | None = Field(default=None, foreign_key="org_unit.id", index=True)
    kind: str = Field(default="indoor", index=True, description="indoor | outdoor")
    manager_id: str | None = Field(default=None, foreign_key="person.id")
    confirmed_at: datetime | None = Field(default=None, sa_column=utc_column(), description=(
        "last confirmed by its owner in the yearly contact confirmation round (store/duty.py confirm_contact)"))
    updated_at: datetime = Field(default_factory=now_utc, sa_column=utc_column(nullable=False))


TABLES: dict[str, type[SQLModel]] = {"teams": RescueTeam, "equipment": Equipment, "depots": SupplyDepot,
                                     "experts": Expert, "shelters": Shelter}
KIND_COLUMN = {"teams": "kind", "equipment": "kind", "experts": "field", "shelters": "kind"}  # the `kind` filter


# ---------------------------------------------------------------- kept up to date: each record's owner confirms it yearly

OWNER = {"teams": "leader_id", "depots": "keeper_id", "experts": "person_id", "shelters": "manager_id"}
"""The person who answers for a record (equipment is kept with its team or depot)."""


def owned_by(session: Session, person_id: str) -> dict[str, list[SQLModel]]:
    """The records `person_id` answers for, per section (none: empty lists)."""
    out: dict[str, list[SQLModel]] = {}
    for section, column in OWNER.items():
        table = TABLES[section]
        out[section] = list(session.exec(select(table).where(getattr(table, column) == person_id).order_by(table.id)))
    return out


def confirm_register(session: Session, person_id: str, at: datetime) -> int:
    """The person confirmed in the yearly round (their contact data and the records they answer for): each of
    their records' `confirmed_at` (never moved back). Returns how many records."""
    n = 0
    for rows in owned_by(session, person_id).values():
        for row in rows:
            if row.confirmed_at is None or row.confirmed_at < at:  # type: ignore[attr-defined]
                row.confirmed_at = at  # type: ignore[attr-defined]
            n += 1
    return n


def stale_records(session: Session, at: datetime, stale_after) -> list[dict]:
    """The register's records not confirmed by their owner within `stale_after` (the contact round's): `never`
    confirmed, `stale` (confirmed before the cut), or `no_owner` (nobody of the directory answers for it)."""
    cut = at - stale_after
    out = []
    for section, column in OWNER.items():
        table = TABLES[section]
        for row in session.exec(select(table).order_by(table.id)):
            owner, confirmed = getattr(row, column), row.confirmed_at  # type: ignore[attr-defined]
            reason = "no_owner" if not owner else ("never" if confirmed is None else ("stale" if confirmed < cut else None))
            if reason:
                out.append({"section": section, "id": row.id, "name": row.name, "owner": owner,  # type: ignore[attr-defined]
                            "confirmed_at": confirmed.isoformat() if confirmed else None, "reason": reason})
    return out


# ---------------------------------------------------------------- queries


def records(session: Session, section: str, *, town: str | None = None, kind: str | None = None,
            limit: int = 1000, offset: int = 0) -> list[SQLModel]:
    """A section's records, filtered by town and by kind (a team's or equipment's kind, an expert's field)."""
    table = TABLES[section]
    stmt = select(table)
    if town:
        stmt = stmt.where(table.town_id == town)
    if kind and section in KIND_COLUMN:
        stmt = stmt.where(getattr(table, KIND_COLUMN[section]) == kind)
    return list(session.exec(stmt.order_by(table.id).offset(offset).limit(limit)))


def stock_lines(session: Session, depot_ids: list[str]) -> dict[str, list[StockLine]]:
    out: dict[str, list[StockLine]] = {d: [] for d in depot_ids}
    if depot_ids:
        for line in session.exec(select(StockLine).where(col(StockLine.depot_id).in_(depot_ids))
                                 .order_by(StockLine.depot_id, StockLine.item)):
            out.setdefault(line.depot_id, []).append(line)
    return out


def stock_flags(line: StockLine, today: date) -> list[str]:
    """What is wrong with a stock line: `below_minimum` (quantity under its minimum), `expired` (past its expiry)."""
    flags = []
    if line.quantity < line.minimum:
        flags.append("below_minimum")
    if line.expiry is not None and line.expiry < today:
        flags.append("expired")
    return flags


@dataclass(frozen=True)
class StockAlert:
    depot_id: str
    depot_name: str
    town_id: str | None
    item: str
    quantity: float
    unit: str
    minimum: float
    expiry: date | None
    flags: tuple[str, ...]

    def as_dict(self) -> dict:
        return {"depot_id": self.depot_id, "depot_name": self.depot_name, "town_id": self.town_id,
                "item": self.item, "quantity": self.quantity, "unit": self.unit, "minimum": self.minimum,
                "expiry": self.expiry.isoformat() if self.expiry else None, "flags": list(self.flags)}


def stock_alerts(session: Session, today: date, *, town: str | None = None) -> list[StockAlert]:
    """Every stock line below its minimum or past its expiry date (`today` in the district's time zone)."""
    stmt = select(StockLine, SupplyDepot).where(StockLine.depot_id == SupplyDepot.id)
    if town:
        stmt = stmt.where(SupplyDepot.town_id == town)
    out = []
    for line, depot in session.exec(stmt.order_by(SupplyDepot.id, StockLine.item)):
        flags = stock_flags(line, today)
        if flags:
            out.append(StockAlert(depot.id, depot.name, depot.town_id, line.item, line.quantity, line.unit,
                                  line.minimum, line.expiry, tuple(flags)))
    return out


def counts(session: Session) -> dict[str, int]:
    from sqlmodel import func

    return {section: session.exec(select(func.count()).select_from(table)).one() for section, table in TABLES.items()}


# ---------------------------------------------------------------- 物资调拨: supplies moved from a depot to a response

SUPPLY_STATES = ("requested", "approved", "refused", "picked_up", "received")


class SupplyRequest(SQLModel, table=True):
    """A request for supplies from a depot against an activation: requested → approved (or refused) by the duty
    office → picked up → received with quantities (the depot's stock goes down by what was received). Each step is
    an audit event under the activation's subject (api/services/supplies.py)."""

    __tablename__ = "supply_request"
    __table_args__ = (UniqueConstraint("activation_id", "seq", name="uq_supply_request"),)
    id: int | None = Field(default=None, primary_key=True)
    activation_id: str = Field(index=True, description=(
        "the activation (checked by the service; no foreign key: this branch of the migrations does not build on the "
        "activations' one)"))
    seq: int
    depot_id: str = Field(foreign_key="supply_depot.id", index=True)
    state: str = Field(default="requested", index=True, description="SUPPLY_STATES")
    items: list[dict] = Field(default_factory=list, sa_column=json_column(nullable=False),
                              description="[{item, unit, requested, stock, shortage, approved, received}]")
    purpose: str = ""
    deliver_to: str = ""
    requested_by: str
    requested_at: datetime = Field(sa_column=utc_column(nullable=False))
    decided_by: str | None = None
    decided_at: datetime | None = Field(default=None, sa_column=utc_column())
    comments: str | None = None
    picked_up_by: str | None = None
    picked_up_by_name: str | None = Field(default=None, description="who collected the supplies")
    picked_up_at: datetime | None = Field(default=None, sa_column=utc_column())
    received_by: str | None = None
    received_at: datetime | None = Field(default=None, sa_column=utc_column())
    updated_at: datetime = Field(default_factory=now_utc, sa_column=utc_column(nullable=False))


# ---------------------------------------------------------------- 每月调度: the monthly readiness check

READINESS_ANSWERS = ("pending", "called", "ready", "not_ready", "no_answer")


class ReadinessRun(SQLModel, table=True):
    """One monthly readiness check (workflows/readiness.py): its id is the workflow's id (the audit subject)."""

    __tablename__ = "readiness_run"
    id: str = Field(primary_key=True)
    started_at: datetime = Field(sa_column=utc_column(nullable=False))
    started_by: str = "schedule"
    status: str = Field(default="running", description="running | closed")
    closed_at: datetime | None = Field(default=None, sa_column=utc_column())
    total: int = 0
    ready: int = 0
    not_ready: int = 0
    no_answer: int = 0
    updated_at: datetime = Field(default_factory=now_utc, sa_column=utc_column(nullable=False))


class ReadinessAnswer(SQLModel, table=True):
    """A team's answer in one check: ready (1), not_ready (2), no_answer (nobody, after its leader and the duty
    chief); pending / called while the check runs."""

    __tablename__ = "readiness_answer"
    __table_args__ = (UniqueConstraint("run_id", "team_id", name="uq_readiness_answer"),)
    id: int | None = Field(default=None, primary_key=True)
    run_id: str = Field(foreign_key="readiness_run.id", index=True)
    team_id: str = Field(index=True, description="the register's team (no foreign key: a team deleted later keeps "
                                                 "its history)")
    team_name: str = ""
    duty_phone: str | None = None
    leader_id: str | None = None
    leader_name: str = ""
    state: str = Field(default="pending", description="READINESS_ANSWERS")
    answered_by: str | None = Field(default=None, description="duty_phone | leader | a person id")
    channel: str | None = None
    answered_at: datetime | None = Field(default=None, sa_column=utc_column())
    escalated: bool = False
    updated_at: datetime = Field(default_factory=now_utc, sa_column=utc_column(nullable=False))
