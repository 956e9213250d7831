"""The outbox (every message sent) and the simulator's controls (the embedded default gateway):
api.services.messages."""
from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, Field

from api.deps import Anyone, DateFrom, DateTo, DutyOfficer, Offset, ReadSessionDep, RowId, SettingsDep, TemporalDep, limit_param
from api.services import messages as svc
from api.services.answers import AnswerConflict, AnswerError, HeldReply, ambiguous_answers, assign_answer
from api.services.dates import local_range
from api.services.messages import SimulatedOutcome
from api.services.shapes import AssignedOut

router = APIRouter(tags=["messages"])


@router.get("/api/outbox", response_model=list[svc.OutboxItem], summary="Messages sent, newest first")
def outbox(session: ReadSessionDep, _: Anyone, settings: SettingsDep, subject: str | None = None, person_id: str | None = None,
           channel: str | None = None, to: str | None = None, limit: Annotated[int, limit_param(20000)] = 200,
           offset: Offset = 0, date_from: DateFrom = None, date_to: DateTo = None) -> list[dict]:
    return svc.outbox(session, subject=subject, person_id=person_id, channel=channel, to=to, limit=limit, offset=offset,
                      dates=local_range(date_from, date_to))


@router.post("/api/simulator/messages/{message_id}", summary="Play a person's answer or a network outcome (simulator)")
async def simulate(message_id: RowId, body: SimulatedOutcome, client: TemporalDep, settings: SettingsDep,
                   _: DutyOfficer) -> dict:
    return await svc.simulate(client, settings, message_id, body)


# ------------------------------------------------------------------ replies nobody can attribute alone


@router.get("/api/answers/ambiguous", response_model=list[HeldReply], response_model_by_alias=True,
            summary="SMS replies from a shared number, held for the duty office to assign")
async def ambiguous(_: DutyOfficer, limit: Annotated[int, limit_param(1000)] = 200) -> list[dict]:
    return await ambiguous_answers(max(1, min(limit, 1000)))


class Assign(BaseModel):
    person_id: str = Field(min_length=1, max_length=100, description="whose answer it is (one of the candidates)")


@router.post("/api/answers/{inbound_id}/assign", response_model=AssignedOut,
             summary="Say whose answer a held reply is; it is then recorded as theirs")
async def assign(inbound_id: RowId, body: Assign, client: TemporalDep, caller: DutyOfficer) -> dict:
    try:
        return await assign_answer(client, inbound_id, body.person_id, caller.actor)
    except LookupError as exc:
        raise HTTPException(404, detail=str(exc)) from exc
    except AnswerConflict as exc:
        raise HTTPException(409, detail=str(exc)) from exc
    except AnswerError as exc:
        raise HTTPException(422, detail=str(exc)) from exc
