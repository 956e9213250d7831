"""应急广播 broadcasts: one row per request to the IP broadcast platform, one per area it covers.

Kept by activities/broadcast.py (requested, accepted) and by the platform's receipts (api/routes/webhooks.py,
or the simulator at once): the board reads each town's state here; the audit chain of the broadcast's subject
(the call-out, or whatever asked for it) holds every step as events.

Areas: a town's terminals are addressed by the town's `area_code` in the directory (the platform's area code,
GB/T 2260 style), else by the town id itself.
"""
from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import UniqueConstraint
from sqlmodel import Field, Session, SQLModel, col, select

from store.audit import NewEvent, append
from store.directory import OrgUnit
from store.types import json_column, now_utc, utc_column
from workflows.kit import events as kinds

AREA_STATES = ("requested", "accepted", "played", "partial", "failed")


class Broadcast(SQLModel, table=True):
    __tablename__ = "broadcast"
    request_id: str = Field(primary_key=True, description="the idempotency key sent to the platform")
    subject: str = Field(index=True, description="the audit subject: the call-out's id, or the warning's")
    workflow_id: str | None = None
    warning_id: str | None = Field(default=None, index=True)
    purpose: str = Field(default="alert", description="alert | update | cancel")
    level: str
    drill: bool = False
    text: str
    repeat: int = 1
    task_id: str | None = Field(default=None, index=True, description="the platform's task id once it accepted")
    status: str = Field(default="requested", description="requested | accepted | failed (the request as a whole)")
    error: str | None = None
    requested_at: datetime = Field(default_factory=now_utc, sa_column=utc_column(nullable=False))
    accepted_at: datetime | None = Field(default=None, sa_column=utc_column())


class BroadcastArea(SQLModel, table=True):
    __tablename__ = "broadcast_area"
    __table_args__ = (UniqueConstraint("request_id", "town_id", name="uq_broadcast_area"),)
    id: int | None = Field(default=None, primary_key=True)
    request_id: str = Field(foreign_key="broadcast.request_id", index=True)
    town_id: str = Field(index=True)
    area: str = Field(description="the platform's area code")
    status: str = Field(default="requested", description="requested | accepted | played | partial | failed")
    terminals: dict[str, Any] = Field(default_factory=dict, sa_column=json_column(nullable=False),
                                      description="terminal -> played | failed, from the receipts")
    updated_at: datetime = Field(default_factory=now_utc, sa_column=utc_column(nullable=False))


def areas_of(s: Session, town_ids: Iterable[str]) -> dict[str, str]:
    """town id -> the platform's area code (the directory's `area_code`, else the town id)."""
    towns = list(dict.fromkeys(town_ids))
    codes = {u.id: u.area_code for u in s.exec(select(OrgUnit).where(col(OrgUnit.id).in_(towns)))} if towns else {}
    return {t: codes.get(t) or t for t in towns}


def _ev(row: Broadcast, kind: str, step: str, payload: dict[str, Any], at: datetime | None = None) -> NewEvent:
    return NewEvent(subject=row.subject, kind=kind, step_id=f"broadcast/{row.request_id}/{step}",
                    workflow_id=row.workflow_id, channel="broadcast", at=at,
                    payload={"request_id": row.request_id, "level": row.level, "purpose": row.purpose,
                             "drill": row.drill, **payload})


def open_request(s: Session, *, request_id: str, subject: str, workflow_id: str | None, warning_id: str | None,
                 purpose: str, level: str, drill: bool, text: str, repeat: int,
                 towns: dict[str, str]) -> tuple[Broadcast, bool]:
    """The request's row (created with its areas and `broadcast.requested` the first time); whether it existed."""
    row = s.get(Broadcast, request_id)
    if row is not None:
        return row, True
    row = Broadcast(request_id=request_id, subject=subject, workflow_id=workflow_id, warning_id=warning_id,
                    purpose=purpose, level=level, drill=drill, text=text, repeat=repeat)
    s.add(row)
    s.flush()
    for town, area in towns.items():
        s.add(BroadcastArea(request_id=request_id, town_id=town, area=area))
    append(s, [_ev(row, kinds.Broadcast.REQUESTED, "requested",
                   {"towns": list(towns), "areas": list(towns.values()), "text": text, "repeat": repeat})])
    return row, False


def of_request(s: Session, request_id: str) -> list[BroadcastArea]:
    return list(s.exec(select(BroadcastArea).where(BroadcastArea.request_id == request_id).order_by(col(BroadcastArea.id))))


def record_accepted(s: Session, request_id: str, task_id: str, status: str, asked: bool) -> Broadcast:
    row = s.get(Broadcast, request_id)
    assert row is not None, request_id
    if row.task_id is None:
        row.task_id, row.status, row.accepted_at, row.error = task_id, "accepted", now_utc(), None
        for a in s.exec(select(BroadcastArea).where(BroadcastArea.request_id == request_id)):
            if a.status == "requested":
                a.status, a.updated_at = "accepted", now_utc()
                s.add(a)
        s.add(row)
    append(s, [_ev(row, kinds.Broadcast.ACCEPTED, "accepted",
                   {"task_id": row.task_id, "platform_status": status, "found_by_asking": asked})])
    return row


def record_failed(s: Session, request_id: str, error: str) -> Broadcast:
    """The platform never accepted the request (every try failed): the request and its areas failed."""
    row = s.get(Broadcast, request_id)
    assert row is not None, request_id
    if row.task_id is None:
        row.status, row.error = "failed", error[:500]
        s.add(row)
        areas = list(s.exec(select(BroadcastArea).where(BroadcastArea.request_id == request_id)))
        for a in areas:
            a.status, a.updated_at = "failed", now_utc()
            s.add(a)
        append(s, [_ev(row, kinds.Broadcast.FAILED, "not_accepted",
                       {"towns": [a.town_id for a in areas], "error": row.error, "stage": "request"})])
    return row


class ReceiptError(ValueError):
    """A receipt that names no broadcast of ours, or an area the broadcast did not cover."""


def record_receipts(s: Session, *, task_id: str | None, request_id: str | None,
                    results: list[dict[str, str]], at: datetime | None = None) -> Broadcast:
    """The platform's word on what played where: each result is {area, status: played|failed, terminal?, error?}.
    One audit event per terminal (a receipt pushed twice writes nothing twice); each area's state follows."""
    row = s.get(Broadcast, request_id) if request_id else None
    if row is None and task_id:
        row = s.exec(select(Broadcast).where(Broadcast.task_id == task_id)).first()
    if row is None or (task_id and row.task_id not in (None, task_id)):
        raise ReceiptError(f"no broadcast with task_id {task_id!r} / request_id {request_id!r}")
    areas: dict[str, list[BroadcastArea]] = {}
    for a in s.exec(select(BroadcastArea).where(BroadcastArea.request_id == row.request_id)):
        areas.setdefault(a.area, []).append(a)  # (two towns may share one area code of the platform)
    evs: list[NewEvent] = []
    for r in results:
        if r["area"] not in areas:
            raise ReceiptError(f"the broadcast {row.request_id!r} did not cover area {r['area']!r}")
        terminal = r.get("terminal") or r["area"]
        for area in areas[r["area"]]:
            area.terminals = {**area.terminals, terminal: r["status"]}
            played = sum(1 for v in area.terminals.values() if v == "played")
            area.status = "played" if played == len(area.terminals) else "partial" if played else "failed"
            area.updated_at = now_utc()
            s.add(area)
            kind = kinds.Broadcast.PLAYED if r["status"] == "played" else kinds.Broadcast.FAILED
            evs.append(_ev(row, kind, f"receipt/{area.town_id}/{r['area']}/{terminal}",
                           {"task_id": row.task_id, "town_id": area.town_id, "area": area.area, "terminal": terminal,
                            **({"error": r["error"][:300]} if r.get("error") else {})}, at=at))
    append(s, evs)
    return row


def of_subject(s: Session, subject: str) -> list[dict[str, Any]]:
    """Every broadcast of a subject, oldest first, with its towns' states (the board's 应急广播 card)."""
    rows = list(s.exec(select(Broadcast).where(Broadcast.subject == subject).order_by(col(Broadcast.requested_at))))
    out = []
    for b in rows:
        areas = list(s.exec(select(BroadcastArea).where(BroadcastArea.request_id == b.request_id)
                            .order_by(col(BroadcastArea.id))))
        out.append({"b": b, "areas": areas})
    return out
