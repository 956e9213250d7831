"""物资调拨: supplies from a depot of the resource register for a response (api/services/supplies.py).

Who acts in the response asks (and records the pickup and the receipt); the duty office approves or refuses, not
the one who asked. A request above the depot's stock answers with `reinforcement_proposal`: the city reinforcement
request (`POST /api/activations/{id}/reinforcements`) filled in."""
from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path

from api.deps import Anyone, Caller, DutyOfficer, ReadSessionDep, SessionDep, require
from api.services import supplies as svc

router = APIRouter(prefix="/api/activations/{activation_id}/supplies", tags=["activations"])
Acting = Annotated[Caller, Depends(require("duty_staff", "duty_cadre", "duty_chief", "leading_leader", "commander"))]
Seq = Annotated[int, Path(ge=1, le=100000)]


@router.get("", summary="The response's supplies requests 物资调拨, each step with who and when")
def list_supplies(activation_id: str, session: ReadSessionDep, _: Anyone) -> list[dict]:
    return svc.listing(session, activation_id)


@router.post("", status_code=201, summary="Ask for supplies from a depot (a shortage proposes the city reinforcement)")
def request_supplies(activation_id: str, body: svc.SupplyRequestIn, session: SessionDep, caller: Acting) -> dict:
    return svc.request(session, activation_id, body, caller.actor)


@router.post("/{seq}/decision", summary="The duty office approves (quantities at most the stock) or refuses a request")
def decide(activation_id: str, seq: Seq, body: svc.DecisionIn, session: SessionDep, caller: DutyOfficer) -> dict:
    return svc.decide(session, activation_id, seq, body, caller.actor)


@router.post("/{seq}/pickup", summary="The approved supplies picked up at the depot (出库), by whom")
def pickup(activation_id: str, seq: Seq, body: svc.PickupIn, session: SessionDep, caller: Acting) -> dict:
    return svc.pickup(session, activation_id, seq, body, caller.actor)


@router.post("/{seq}/receipt", summary="Received with quantities (签收): the depot's stock goes down by them")
def receive(activation_id: str, seq: Seq, body: svc.ReceiptIn, session: SessionDep, caller: Acting) -> dict:
    return svc.receive(session, activation_id, seq, body, caller.actor)
