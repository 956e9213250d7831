"""`/api/handovers`: shift handovers 交接班 (opened by the schedule or here; note, hand over, take over)."""
from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, HTTPException
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from api.deps import Anyone, DutyOfficer, SettingsDep, TemporalDep
from api.routes.bodies import body_of
from api.routes.duty.common import lib
from api.services import duty as svc
from workflows.handover import HandOverIn, HandoverView, NoteIn, NoteItem, TakeOverIn

router = APIRouter()


class HandoverOpened(HandoverView):
    duplicate: bool = Field(description="opened before (same shift change): as it stands, answered with 200")


class HandoverStart(BaseModel):
    shift_at: datetime | None = Field(default=None, description="the change of duty chief; default: now")


class NoteEdit(BaseModel):
    items: list[NoteItem] | None = Field(default=None, max_length=500)
    text: str | None = Field(default=None, max_length=10000)


HandOverBody = body_of(HandOverIn, "HandOverBody", "text")


TakeOverBody = body_of(TakeOverIn, "TakeOverBody", "note")


@router.post("/api/handovers", status_code=201, response_model=HandoverOpened,
             summary="Open the handover of a shift change (also done by the schedule)",
             responses={200: {"model": HandoverOpened,
                              "description": "Opened before (same shift change): as it stands, with duplicate: true"}})
async def open_handover(client: TemporalDep, settings: SettingsDep, caller: DutyOfficer,
                        body: HandoverStart | None = None):
    shift_at = body.shift_at if body else None
    if shift_at is not None and shift_at.tzinfo is None:
        raise HTTPException(422, detail="shift_at: give a time zone, e.g. 2026-07-01T08:30:00+08:00")
    view, existed = await svc.start_handover(client, lib(), settings, shift_at, caller.actor)
    return JSONResponse(status_code=200 if existed else 201, content={**view.model_dump(mode="json"), "duplicate": existed})


@router.get("/api/handovers", summary="Handovers, newest first")
def handovers(_: Anyone, limit: int = 50) -> list[dict]:
    return svc.handover_list(max(1, min(limit, 500)))


@router.get("/api/handovers/{handover_id}", summary="One handover: the note, who handed over and took over, when, the timeline")
def handover(handover_id: str, _: Anyone) -> dict:
    found = svc.handover_detail(handover_id)
    if found is None:
        raise HTTPException(404, detail=f"no handover {handover_id!r}")
    return found


async def _step(client, handover_id: str, action: str, req) -> dict:
    return (await svc.handover_step(client, handover_id, action, req)).model_dump(mode="json")


@router.post("/api/handovers/{handover_id}/note", response_model=HandoverView,
             summary="The outgoing duty chief edits the handover note")
async def edit_note(handover_id: str, body: NoteEdit, client: TemporalDep, caller: DutyOfficer) -> dict:
    return await _step(client, handover_id, "note", NoteIn(actor=caller.actor, role=caller.role, **body.model_dump()))


@router.post("/api/handovers/{handover_id}/hand-over", response_model=HandoverView,
             summary="The outgoing duty chief hands over (交班)")
async def hand_over(handover_id: str, client: TemporalDep, caller: DutyOfficer, body: HandOverBody | None = None) -> dict:
    return await _step(client, handover_id, "hand_over",
                       HandOverIn(actor=caller.actor, role=caller.role, text=body.text if body else None))


@router.post("/api/handovers/{handover_id}/take-over", response_model=HandoverView,
             summary="The incoming duty chief takes over (接班)")
async def take_over(handover_id: str, client: TemporalDep, caller: DutyOfficer, body: TakeOverBody | None = None) -> dict:
    return await _step(client, handover_id, "take_over",
                       TakeOverIn(actor=caller.actor, role=caller.role, note=body.note if body else None))
