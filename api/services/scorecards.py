"""考核 scorecards for the API and the console: the period asked for checked, then `store.scorecards` read.

A period is two local dates (the duty office's calendar), both included, at most a year and a day long; a unit
is a town (street) or a department of the directory."""
from __future__ import annotations

from typing import Any

from sqlmodel import Session

from api.services.dates import DateRange, local_range
from api.services.errors import ServiceError
from store import scorecards as cards
from store.directory import OrgUnit

MAX_DAYS = 367


def _freshness() -> tuple | None:
    """(stale after, failing window) of contact data from the definitions (definitions/duty/freshness.yaml)."""
    from config import get_settings
    from definitions.loader import cached_library

    return cards.contact_limits(cached_library(get_settings().definitions_dir).duty())


class ScorecardError(ServiceError):
    """A period or unit the scorecards cannot be computed for."""


def period(date_from: str | None, date_to: str | None) -> DateRange:
    """The UTC range of the local days asked for; 422 naming what is wrong."""
    if not date_from or not date_to:
        raise ScorecardError(422, "from 与 to 均须给出(YYYY-MM-DD) / give both from and to (YYYY-MM-DD)")
    r = local_range(date_from, date_to)
    assert r.start is not None and r.end is not None
    if (r.end - r.start).days > MAX_DAYS:
        raise ScorecardError(422, f"统计期间不得超过{MAX_DAYS}天 / the period may be at most {MAX_DAYS} days long")
    return r


def _shape(r: DateRange, date_from: str, date_to: str, rows: list[dict[str, Any]]) -> dict[str, Any]:
    return {"from": date_from, "to": date_to, "since": r.start.isoformat() if r.start else None,
            "until": r.end.isoformat() if r.end else None, "units": rows}


def listing(s: Session, date_from: str | None, date_to: str | None, kind: str | None = None) -> dict[str, Any]:
    """Every town's and department's figures (or `kind`'s) over the period."""
    if kind is not None and kind not in cards.KINDS:
        raise ScorecardError(422, f"kind 须为 {' 或 '.join(cards.KINDS)} / kind: one of {', '.join(cards.KINDS)}")
    r = period(date_from, date_to)
    return _shape(r, date_from or "", date_to or "", cards.scorecards(s, r.start, r.end, kind=kind, freshness=_freshness(), refs=False))


def one(s: Session, unit_id: str, date_from: str | None, date_to: str | None) -> dict[str, Any]:
    """One unit's figures over the period, with the events (subjects and chain positions) each came from."""
    r = period(date_from, date_to)
    unit = s.get(OrgUnit, unit_id)
    if unit is None or unit.kind not in cards.KINDS:
        raise ScorecardError(404, f"无此乡镇(街道)或部门 / no town or department {unit_id!r}")
    rows = cards.scorecards(s, r.start, r.end, unit_id=unit_id, freshness=_freshness())
    out = _shape(r, date_from or "", date_to or "", rows)
    card = rows[0]
    out.pop("units")
    out["unit"] = card
    out["events"] = cards.events_of(card)
    return out
