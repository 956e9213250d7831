"""The resource register as the API and the console use it: lists with filters, one record, the duty office's
creates and updates (checked by the same rules as the import, store/resources_import.py), the stock alerts."""
from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

from pydantic import BaseModel
from sqlmodel import Session

from api.services.errors import ServiceError
from definitions.yamlsource import format_loc
from definitions.schema.resources import EQUIPMENT_KINDS, EXPERT_FIELDS, TEAM_KINDS
from store.resources import KIND_COLUMN, SECTIONS, TABLES, records, stock_alerts, stock_flags, stock_lines
from store.resources_import import RECORD_MODELS, RegisterIn, check, write

KINDS = {"teams": TEAM_KINDS, "equipment": EQUIPMENT_KINDS, "experts": EXPERT_FIELDS, "shelters": ("indoor", "outdoor")}


class ResourceError(ServiceError):
    pass


def today(tz: str) -> date:
    return datetime.now(ZoneInfo(tz)).date()


def valid_filters(section: str, kind: str | None) -> None:
    if section not in SECTIONS:
        raise ResourceError(404, f"no register section {section!r}; sections: {', '.join(SECTIONS)}")
    if kind and section not in KIND_COLUMN:
        raise ResourceError(422, f"kind: {section} have no kind")
    if kind and kind not in KINDS[section]:
        raise ResourceError(422, f"kind: {kind!r} is not one of {', '.join(KINDS[section])}")


def _stock(line, on: date) -> dict:
    return {"item": line.item, "quantity": line.quantity, "unit": line.unit, "minimum": line.minimum,
            "expiry": line.expiry.isoformat() if line.expiry else None, "flags": stock_flags(line, on)}


def shown(session: Session, section: str, rows: list, on: date) -> list[dict]:
    out = [r.model_dump(mode="json") for r in rows]
    if section == "depots":
        lines = stock_lines(session, [r.id for r in rows])
        for d in out:
            d["stock"] = [_stock(x, on) for x in lines.get(d["id"], [])]
            d["alerts"] = sum(1 for x in d["stock"] if x["flags"])
    return out


def record_list(session: Session, section: str, tz: str, *, town: str | None = None, kind: str | None = None,
                limit: int = 1000, offset: int = 0) -> list[dict]:
    valid_filters(section, kind)
    return shown(session, section, records(session, section, town=town, kind=kind, limit=limit, offset=offset), today(tz))


def record(session: Session, section: str, record_id: str, tz: str) -> dict:
    valid_filters(section, None)
    row = session.get(TABLES[section], record_id)
    if row is None:
        raise ResourceError(404, f"no {section} record {record_id!r}")
    return shown(session, section, [row], today(tz))[0]


REGISTER_SUBJECT = "resources"
"""The audit subject of the duty office's edits of the register through the API (the import writes none)."""


def _snapshot(session: Session, section: str, record_id: str) -> dict | None:
    """A record's fields as stored (a depot with its stock lines), for the edit's audit event."""
    row = session.get(TABLES[section], record_id)
    if row is None:
        return None
    out = row.model_dump(mode="json", exclude={"updated_at"})
    if section == "depots":
        out["stock"] = [line.model_dump(mode="json", exclude={"id", "depot_id"})
                        for line in stock_lines(session, [record_id]).get(record_id, [])]
    return out


def _audit_edit(session: Session, section: str, record_id: str, before: dict | None, after: dict, actor: str) -> None:
    """`resources.created` / `resources.updated` (who, what changed: each field's before and after) under the
    subject `resources`; a busy team set available also `resources.team_released`. No event for a PUT that
    changes nothing."""
    from datetime import UTC, datetime

    from store.audit import NewEvent, append
    from workflows.kit.events import Resources as Kinds

    now = datetime.now(UTC)
    step = f"{section}/{record_id}/{now.timestamp()}"
    if before is None:
        events = [NewEvent(subject=REGISTER_SUBJECT, kind=Kinds.CREATED, step_id=f"{step}/created", actor=actor, at=now,
                           payload={"section": section, "id": record_id, "record": after})]
    else:
        changes = {k: {"before": before.get(k), "after": v} for k, v in after.items() if before.get(k) != v}
        if not changes:
            return
        events = [NewEvent(subject=REGISTER_SUBJECT, kind=Kinds.UPDATED, step_id=f"{step}/updated", actor=actor, at=now,
                           payload={"section": section, "id": record_id, "changes": changes})]
        if section == "teams" and before.get("status") == "busy" and after.get("status") == "available":
            events.append(NewEvent(subject=REGISTER_SUBJECT, kind=Kinds.TEAM_RELEASED, step_id=f"{step}/released",
                                   actor=actor, at=now, payload={"team": record_id, "name": after.get("name"),
                                                                 "busy_with": before.get("busy_with"),
                                                                 "busy_since": before.get("busy_since"),
                                                                 "by": "register"}))
    append(session, events)


def save(session: Session, section: str, body: BaseModel, tz: str, *, record_id: str | None = None,
         actor: str = "system") -> dict:
    """Create (`record_id` None: the id must be new, 409) or update (`record_id`: it must exist, 404, and the body
    must name it) one record, checked as an import of that one record is; every problem is a 422 naming it.
    Audited under `resources` with `actor` and what changed (`_audit_edit`), in the same transaction."""
    valid_filters(section, None)
    if not isinstance(body, RECORD_MODELS[section]):
        raise ResourceError(422, f"not a {section} record")
    exists = session.get(TABLES[section], body.id) is not None
    if record_id is None and exists:
        raise ResourceError(409, f"{section} record {body.id!r} exists already; update it with PUT")
    if record_id is not None:
        if body.id != record_id:
            raise ResourceError(422, f"id: the body names {body.id!r}, the address {record_id!r}")
        if not exists:
            raise ResourceError(404, f"no {section} record {record_id!r}; create it with POST")
    reg = RegisterIn(**{section: [body]})
    problems, phones = check(reg, session)
    if problems:
        raise ResourceError(422, "; ".join(f"{format_loc(loc[2:])}: {msg}" for loc, msg in problems))
    before = _snapshot(session, section, body.id)
    write(session, reg, phones)
    session.flush()
    after = _snapshot(session, section, body.id)
    assert after is not None
    _audit_edit(session, section, body.id, before, after, actor)
    return record(session, section, body.id, tz)


def stale(session: Session) -> dict:
    """The register's records whose owner has not confirmed them within the contact round's `stale_after` (the
    yearly round 通讯录核实 confirms a person's records with their contact data: store/duty.py confirm_contact)."""
    from datetime import UTC, datetime

    from config import get_settings
    from definitions.loader import cached_library
    from definitions.schema.duty import FreshnessSettings
    from store.resources import stale_records

    duty = cached_library(get_settings().definitions_dir).duty()
    after = (duty.freshness if duty else FreshnessSettings()).stale_after
    rows = stale_records(session, datetime.now(UTC), after)
    return {"stale_after_days": after.days, "records": rows,
            "counts": {r: sum(x["reason"] == r for x in rows) for r in ("never", "stale", "no_owner")}}


def alerts(session: Session, tz: str, town: str | None = None) -> dict:
    on = today(tz)
    return {"today": on.isoformat(), "alerts": [a.as_dict() for a in stock_alerts(session, on, town=town)]}


# ------------------------------------------------------------------ dispatch from the register


def proposal(session: Session, kinds: list[str], town_id: str | None) -> dict:
    """The register's teams of `kinds`: available and ready ones first, those of `town_id` first, then the
    strongest; with the available strength per kind."""
    from sqlmodel import col, select

    from store.resources import RescueTeam

    rows = list(session.exec(select(RescueTeam).where(col(RescueTeam.kind).in_(kinds)))) if kinds else []
    rank = {"ready": 0, "partial": 1, "unready": 2}
    rows.sort(key=lambda t: (t.status != "available", rank.get(t.readiness, 3), t.town_id != town_id,
                             kinds.index(t.kind), -t.strength, t.id))
    teams = [{"id": t.id, "name": t.name, "kind": t.kind, "strength": t.strength, "town_id": t.town_id,
              "base": t.base, "equipment": t.equipment, "readiness": t.readiness, "status": t.status,
              "busy_with": t.busy_with, "duty_phone": t.duty_phone,
              "proposed": t.status == "available" and t.readiness != "unready"} for t in rows]
    strength = {k: sum(t["strength"] for t in teams if t["kind"] == k and t["proposed"]) for k in kinds}
    return {"kinds": kinds, "town_id": town_id, "teams": teams, "available_strength": strength}


def dispatch_proposal(activation_id: str) -> dict | None:
    """An activation's proposal: its plan's team kinds, its incident's town (api/routes/activations.py)."""
    from store import activations as store
    from store.db import session_scope

    with session_scope(write=False) as s:
        row = store.get(s, activation_id)
        if row is None:
            return None
        view = row.view or {}
        return {"activation_id": activation_id, **proposal(s, list(view.get("team_kinds") or []), view.get("town_id"))}
