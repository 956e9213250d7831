"""`/api/spotchecks`: 六问 spot checks of real call-outs (started by the sweep or here), answers taken by
phone, follow-ups resolved."""
from __future__ import annotations

import uuid

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, Field

from api.deps import Anyone, DutyOfficer, SettingsDep, TemporalDep
from api.routes.bodies import body_of
from api.routes.duty.common import lib
from api.services import duty as svc
from workflows.spotcheck import AnswerIn, ResolveIn, SpotCheckView

router = APIRouter()


class SpotCheckStart(BaseModel):
    callout_id: str = Field(min_length=1, max_length=300)


AnswerBody = body_of(AnswerIn, "AnswerBody", "person_id", "answers", "note", described={
    "answers": "question id -> yes (true) / no (false), every question", "note": "e.g. 电话抽查"})


ResolveBody = body_of(ResolveIn, "ResolveBody", "key", "note", described={"key": "the follow-up's key (town/person)"})


@router.post("/api/spotchecks", response_model=svc.CheckStarted, status_code=201,
             summary="Start a 六问 spot check of a call-out now (the sweep does it too)")
async def start_spotcheck(body: SpotCheckStart, client: TemporalDep, settings: SettingsDep, caller: DutyOfficer) -> dict:
    return {"check_id": await svc.start_spotcheck(client, lib(), settings, body.callout_id, caller.actor)}


@router.get("/api/spotchecks", summary="Spot checks, newest first")
def spotchecks(_: Anyone, limit: int = 100) -> list[dict]:
    return svc.spotcheck_list(max(1, min(limit, 1000)))


@router.get("/api/spotchecks/{check_id}", summary="One spot check: the sample, every answer, the follow-ups")
def spotcheck(check_id: str, _: Anyone) -> dict:
    found = svc.spotcheck_detail(check_id)
    if found is None:
        raise HTTPException(404, detail=f"no spot check {check_id!r}")
    return found


@router.post("/api/spotchecks/{check_id}/answers", summary="Record answers taken by phone, on the person's behalf")
async def answer_by_phone(check_id: str, body: AnswerBody, client: TemporalDep, caller: DutyOfficer) -> dict:
    req = AnswerIn(actor=caller.actor, role=caller.role, person_id=body.person_id, answers=body.answers, channel="phone",
                   note=body.note, ref=f"phone:{caller.actor}:{body.person_id}:{uuid.uuid4().hex[:8]}")
    return await svc.spotcheck_answer(client, check_id, req)


@router.post("/api/spotchecks/{check_id}/resolve", response_model=SpotCheckView,
             summary="Resolve a follow-up: what the town did")
async def resolve_followup(check_id: str, body: ResolveBody, client: TemporalDep, caller: Anyone) -> dict:
    req = ResolveIn(actor=caller.actor, role=caller.role, key=body.key, note=body.note)
    return (await svc.spotcheck_resolve(client, check_id, req)).model_dump(mode="json")
