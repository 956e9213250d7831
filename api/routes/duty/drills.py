"""`/api/drills`, `/api/drill-weeks` (the weekly drill count), `/api/drill-programme`: drill runs 演练; `/api/statistics/callouts`: real call-outs, drills apart."""
from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query

from api.deps import Anyone, SettingsDep, TemporalDep
from api.routes.duty.common import Chief, lib
from api.services import duty as svc
from config import get_settings

router = APIRouter()


@router.get("/api/drills", summary="Drill runs, newest first, with each one's response rate within its window")
def drills(_: Anyone, limit: int = 100, drill_id: str | None = None) -> dict:
    return {"runs": svc.drill_list(max(1, min(limit, 1000)), drill_id), "statistics": svc.drill_figures()}


@router.get("/api/drill-weeks", summary="Drills actually run per week (Monday 00:00 local) against the programme's "
                                         "weekly minimums; a week below is flagged")
def drill_weeks(_: Anyone, date_from: Annotated[str | None, Query(alias="from", max_length=10)] = None,
                date_to: Annotated[str | None, Query(alias="to", max_length=10)] = None) -> dict:
    return svc.drill_weeks(lib(), get_settings(), date_from, date_to)


@router.get("/api/drills/{run_id}", summary="One drill run: the sample, who answered within the window")
def drill(run_id: str, _: Anyone) -> dict:
    found = svc.drill_detail(run_id)
    if found is None:
        raise HTTPException(404, detail=f"no drill run {run_id!r}")
    return found


@router.post("/api/drill-programme/{drill_id}/run", response_model=svc.RunStarted, status_code=202,
             summary="Run a drill now, outside its schedule")
async def run_drill(drill_id: str, client: TemporalDep, settings: SettingsDep, caller: Chief) -> dict:
    return {"run_id": await svc.run_drill(client, lib(), settings, drill_id, caller.actor)}


@router.get("/api/statistics/callouts", summary="Real call-outs in a period (drills are never counted) and drills apart")
def statistics(_: Anyone, since: datetime | None = None, until: datetime | None = None) -> dict:
    return svc.callout_figures(since, until)
