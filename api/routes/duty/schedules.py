"""`/api/schedules`: the duty day's recurring procedures as Temporal Schedules."""
from __future__ import annotations

from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel, Field

from api.deps import Admin, Anyone, SettingsDep, TemporalDep
from api.routes.duty.common import Chief, lib
from api.services import duty as svc

router = APIRouter()


class NoteBody(BaseModel):
    note: str = Field(default="", max_length=500, description="why (kept on the schedule and in the audit trail)")
    reason: str = Field(default="", max_length=500,
                        description="why a drill is paused; required when the pause takes the drill programme below "
                                    "its weekly minimum (the duty chief is then told)")


@router.get("/api/schedules", response_model=list[svc.ScheduleOut], response_model_exclude_unset=True,
            summary="The duty day's schedules: drills, handover, spot-check sweep, confirmation round")
async def schedules(client: TemporalDep, settings: SettingsDep, _: Anyone) -> list[dict]:
    return await svc.list_schedules(client, lib(), settings)


@router.post("/api/schedules/sync", response_model=svc.SyncOut,
             summary="Create or update every schedule from definitions/duty (paused stay paused)")
async def sync(client: TemporalDep, settings: SettingsDep, caller: Admin) -> dict:
    return await svc.sync_schedules(client, lib(), settings, caller.actor)


@router.post("/api/schedules/{schedule_id}/{action}", response_model=svc.ScheduleControlOut,
             summary="Pause, unpause or trigger a schedule now")
async def control(schedule_id: str, action: Literal["pause", "unpause", "trigger"], client: TemporalDep,
                  settings: SettingsDep, caller: Chief, body: NoteBody | None = None) -> dict:
    body = body or NoteBody()
    return await svc.control_schedule(client, lib(), settings, schedule_id, action, body.note, caller.actor,
                                      reason=body.reason)
