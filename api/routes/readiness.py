"""`/api/readiness`: the monthly readiness check 每月调度 of the rescue teams (workflows/readiness.py): the runs,
one run's answers per team, and a run started now by the duty chief (the schedule `readiness-monthly` runs it
monthly)."""
from __future__ import annotations

from fastapi import APIRouter

from api.deps import Anyone, ReadSessionDep, SettingsDep, TemporalDep
from api.routes.duty.common import Chief, lib
from api.services import readiness as svc

router = APIRouter(prefix="/api/readiness", tags=["resources"])


@router.get("", summary="Readiness checks, newest first (counts: ready, not ready, no answer)")
def runs(session: ReadSessionDep, _: Anyone) -> list[dict]:
    return svc.runs(session)


@router.get("/{run_id}", summary="One readiness check: each team's answer (ready, not_ready, no_answer)")
def run(run_id: str, session: ReadSessionDep, _: Anyone) -> dict:
    return svc.run(session, run_id)


@router.post("", status_code=202, summary="Run the readiness check now (the duty chief; the schedule runs it monthly)")
async def start(client: TemporalDep, settings: SettingsDep, caller: Chief) -> dict:
    return {"run_id": await svc.start(client, lib(), settings, caller.actor)}
