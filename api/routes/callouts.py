"""Call-outs: status, targets, acknowledging on someone's behalf, cancelling (api.services.callouts)."""
from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter
from pydantic import BaseModel, Field

from api.deps import Anyone, DateFrom, DateTo, DutyOfficer, Offset, ReadSessionDep, TemporalDep, limit_param
from api.services import callouts as svc
from api.services.dates import local_range
from api.services.shapes import AckOut

router = APIRouter(prefix="/api/callouts", tags=["callouts"])


@router.get("", response_model=list[svc.CalloutOut], summary="Call-outs, newest first, with counts by state")
def list_callouts(session: ReadSessionDep, _: Anyone, limit: Annotated[int, limit_param(500)] = 50,
                  drill: bool | None = None, date_from: DateFrom = None, date_to: DateTo = None) -> list[dict]:
    # drill=false: real call-outs only (drill=true: drills only)
    return svc.callout_list(session, limit, drill, dates=local_range(date_from, date_to))


@router.get("/{callout_id}", response_model=svc.CalloutDetailOut,
            summary="One call-out: status, counts by state and every target")
def get_callout(callout_id: str, session: ReadSessionDep, _: Anyone, state: str | None = None, tier: str | None = None,
                limit: Annotated[int, limit_param(20000)] = 20000, offset: Offset = 0) -> dict:
    return svc.callout_detail(session, callout_id, state, tier, limit, offset)


class ProxyAck(BaseModel):
    note: str = Field(min_length=1, max_length=1000, description="how the person was reached, e.g. 电话确认")


@router.post("/{callout_id}/targets/{person_id}/ack", response_model=AckOut,
             summary="Confirm on someone's behalf (e.g. after a phone call)")
async def ack_on_behalf(callout_id: str, person_id: str, body: ProxyAck, client: TemporalDep,
                        caller: DutyOfficer) -> dict:
    return await svc.ack_on_behalf(client, callout_id, person_id, body.note, caller.actor)


class RelayBody(BaseModel):
    households: int = Field(ge=0, le=100000, description="households in the danger zones informed (到户)")
    reported_by: str | None = Field(default=None, max_length=100,
                                    description="the grid worker (网格员) of that village who reported it")
    note: str | None = Field(default=None, max_length=1000, description="e.g. 网格员电话报告")


@router.post("/{callout_id}/relays/{person_id}", response_model=svc.RelayOut,
             summary="到户: confirm a village's relay on the person's behalf (recorded on time or late)")
async def confirm_relay(callout_id: str, person_id: str, body: RelayBody, client: TemporalDep,
                        caller: DutyOfficer) -> dict:
    return await svc.confirm_relay(client, callout_id, person_id, body.households, caller.actor,
                                   reported_by=body.reported_by, note=body.note)


class CancelBody(BaseModel):
    reason: str = Field(min_length=1, max_length=500)


@router.post("/{callout_id}/cancel", response_model=svc.CancelOut,
             summary="End a call-out early; everyone already reached is told")
async def cancel(callout_id: str, body: CancelBody, client: TemporalDep, caller: DutyOfficer) -> dict:
    return await svc.cancel(client, callout_id, body.reason, caller.actor)
