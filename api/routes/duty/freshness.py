"""`/api/freshness`: contact freshness 通讯录核实: confirmation rounds, stale or failing contacts, and the
warning a call-out preview gives about them."""
from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Query
from pydantic import BaseModel, Field

from api.deps import Admin, DutyOfficer, ReadSessionDep, SettingsDep, TemporalDep
from api.routes.duty.common import lib
from api.services import duty as svc

router = APIRouter()


class RoundStart(BaseModel):
    deadline: datetime | None = Field(default=None, description="default: the next round_by day (20 April)")


@router.post("/api/freshness/rounds", response_model=svc.RoundStarted, status_code=202,
             summary="Start a contact confirmation round now (the schedule does it yearly)")
async def start_round(client: TemporalDep, settings: SettingsDep, caller: Admin, body: RoundStart | None = None) -> dict:
    deadline = body.deadline if body else None
    if deadline is not None and (deadline.tzinfo is None or deadline <= datetime.now(UTC)):
        raise HTTPException(422, detail="deadline: a future time with a time zone")
    return {"round_id": await svc.start_round(client, lib(), settings, deadline, caller.actor)}


@router.get("/api/freshness/rounds", summary="Confirmation rounds, newest first")
def rounds(_: Admin) -> list[dict]:
    return svc.rounds()


@router.get("/api/freshness/rounds/{round_id}", summary="One round: counts; persons (filter: confirmed, unconfirmed, asked, bounced)")
def round_detail(round_id: str, _: Admin,
                 state: Literal["pending", "asked", "confirmed", "unconfirmed", "bounced"] | None = None) -> dict:
    found = svc.round_detail(round_id, state)
    if found is None:
        raise HTTPException(404, detail=f"no round {round_id!r}")
    return found


@router.get("/api/freshness/contacts", summary="Persons whose contact data is stale (not confirmed in time) or whose number fails")
def contacts(_: Admin, which: Literal["stale", "failing", "all"] = "stale") -> list[dict]:
    return svc.contact_list(lib(), which)


@router.get("/api/freshness/preview", summary="Who a call-out would reach whose contact data is stale or failing")
def preview(session: ReadSessionDep, _: DutyOfficer, event: str = Query(min_length=1, max_length=200),
            level: Literal["blue", "yellow", "orange", "red"] = "orange",
            towns: Annotated[list[str], Query(max_length=500)] = []) -> dict:  # noqa: B006
    return svc.freshness_preview(session, lib(), event, level, towns)
