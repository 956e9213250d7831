"""Plan activations 分级响应: activate, direct (督办), dispatch forces, request reinforcement, change level, terminate.

Every step after the activation is an update of `PlanActivationWorkflow`: its validators
refuse a step by the wrong role or person (403), out of order (409), with bad input (422)
or about an unknown task, directive or dispatch plan (404), and say why.
"""
from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, field_validator

from api.deps import Anyone, Caller, DateFrom, DateTo, DutyOfficer, SettingsDep, TemporalDep, require
from api.routes.bodies import body_of
from api.services.dates import local_range
from api.services import activations as svc
from definitions.loader import cached_library
from definitions.schema.common import Duration
from workflows.activation import (
    ActivationView,
    ConclusionIn,
    ConsultIn,
    DirectiveIn,
    DispatchDecisionIn,
    DispatchIn,
    ExpertMeetingIn,
    FeedbackIn,
    ItemIn,
    ItemReviewIn,
    LevelIn,
    PersonAckIn,
    ReinforceAnswerIn,
    ReinforceIn,
    TerminateIn,
)

router = APIRouter(prefix="/api/activations", tags=["activations"])
# Anyone who may act in a response: the plan and the workflow decide what each may do (supervisors only read).


class ActivationOpened(ActivationView):
    duplicate: bool = Field(description="activated before (same incident and plan): as it stands, answered with 200")


Acting = Annotated[Caller, Depends(require("duty_staff", "duty_cadre", "duty_chief", "leading_leader", "commander"))]


def _who(caller: Caller) -> dict:
    return {"actor": caller.actor, "role": caller.role}


async def _step(client, activation_id: str, action: str, req) -> dict:
    view = await svc.step(client, activation_id, action, req)
    return view.model_dump(mode="json")


def _aware(v: datetime | None) -> datetime | None:
    if v is not None and v.tzinfo is None:
        raise ValueError("give a time zone, e.g. 2026-07-01T18:00:00+08:00")
    return v


@router.post("", status_code=201, response_model=ActivationOpened,
             summary="Activate a response plan at a level for an incident (启动响应)",
             responses={200: {"model": ActivationOpened,
                              "description": "Activated before (same incident and plan): as it stands, with duplicate: true"}})
async def activate(body: svc.ActivationIn, client: TemporalDep, settings: SettingsDep, caller: Acting):
    view, existed = await svc.start(client, settings, cached_library(settings.definitions_dir), body, caller.actor,
                                    caller.role)
    return JSONResponse(status_code=200 if existed else 201, content={**view.model_dump(mode="json"), "duplicate": existed})


@router.get("", summary="Activations, newest first: level, status, commander's acknowledgement, open and overdue work")
def list_activations(_: Anyone, limit: int = 100, status: str | None = None, incident_id: str | None = None,
                     date_from: DateFrom = None, date_to: DateTo = None) -> list[dict]:
    svc.valid_filter("status", status, ("active", "terminated"))
    return svc.listing(max(1, min(limit, 1000)), status, incident_id, dates=local_range(date_from, date_to))


@router.get("/{activation_id}", summary="One activation: level, commanders and their acknowledgement, groups, tasks and "
                                        "directives with deadlines and feedback, dispatches, reinforcement requests")
def get_activation(activation_id: str, _: Anyone) -> dict:
    found = svc.detail(activation_id)
    if found is None:
        raise HTTPException(404, detail=f"no activation {activation_id!r}")
    return found


# ------------------------------------------------------------------ directives and tasks (督办)


class DirectiveBody(BaseModel):
    text: str = Field(min_length=1, max_length=4000)
    title: str = Field(default="", max_length=200)
    assignee: str = Field(min_length=1, max_length=100, description="group:<id> of an active working group, or an org unit id")
    due_at: datetime | None = Field(default=None, description="the time limit, or give due_in")
    due_in: Duration | None = Field(default=None, description="e.g. 2h")

    @field_validator("due_at")
    @classmethod
    def _due(cls, v: datetime | None) -> datetime | None:
        return _aware(v)


@router.post("/{activation_id}/directives", response_model=ActivationView,
             summary="The commander issues a directive 指令 to a group or unit, with a time limit")
async def directive(activation_id: str, body: DirectiveBody, client: TemporalDep, caller: Acting) -> dict:
    return await _step(client, activation_id, "directive", DirectiveIn(**_who(caller), **body.model_dump()))


class AckBody(BaseModel):
    note: str | None = Field(default=None, max_length=1000, description="acting for the assignee: how they confirmed")


@router.post("/{activation_id}/items/{item_id}/ack", response_model=ActivationView,
             summary="The assignee confirms a task or directive (or the duty office for them)")
async def ack_item(activation_id: str, item_id: str, client: TemporalDep, caller: Acting, body: AckBody | None = None) -> dict:
    return await _step(client, activation_id, "acknowledge", ItemIn(**_who(caller), item_id=item_id,
                                                                    note=body.note if body else None))


FeedbackBody = body_of(FeedbackIn, "FeedbackBody", "kind", "text", "note")


@router.post("/{activation_id}/items/{item_id}/feedback", response_model=ActivationView,
             summary="Feedback on a task or directive: progress, done or blocked")
async def feedback(activation_id: str, item_id: str, body: FeedbackBody, client: TemporalDep, caller: Acting) -> dict:
    return await _step(client, activation_id, "feedback", FeedbackIn(**_who(caller), item_id=item_id, **body.model_dump()))


ReviewBody = body_of(ItemReviewIn, "ReviewBody", "decision", "comments", "due_in",
                     described={"comments": "required when returning"})


@router.post("/{activation_id}/items/{item_id}/review", response_model=ActivationView,
             summary="The commander accepts reported work (办结) or returns it")
async def review(activation_id: str, item_id: str, body: ReviewBody, client: TemporalDep, caller: Acting) -> dict:
    return await _step(client, activation_id, "review", ItemReviewIn(**_who(caller), item_id=item_id, **body.model_dump()))


# ------------------------------------------------------------------ level and termination


LevelBody = body_of(LevelIn, "LevelBody", "level", "reason")


@router.post("/{activation_id}/level", response_model=ActivationView, summary="Raise or lower the response level")
async def level(activation_id: str, body: LevelBody, client: TemporalDep, caller: Acting) -> dict:
    return await _step(client, activation_id, "level", LevelIn(**_who(caller), **body.model_dump()))


TerminateBody = body_of(TerminateIn, "TerminateBody", "reason")


@router.post("/{activation_id}/terminate", response_model=ActivationView,
             summary="Terminate the response: everything open closes, the post-event review starts")
async def terminate(activation_id: str, body: TerminateBody, client: TemporalDep, caller: Acting) -> dict:
    return await _step(client, activation_id, "terminate", TerminateIn(**_who(caller), **body.model_dump()))


# ------------------------------------------------------------------ force dispatch 力量调度


DispatchBody = body_of(DispatchIn, "DispatchBody", "forces", "teams", "task", "place",  # at most 50 forces at once
                       forces=(list[str], Field(default_factory=list, max_length=50, description="force ids of the plan")),
                       teams=(list[str], Field(default_factory=list, max_length=50, description=(
                           "team ids of the resource register (GET …/dispatches/proposal): marked busy until the plan "
                           "is returned or the response ends; a busy one is refused (409)"))))


@router.get("/{activation_id}/dispatches/proposal",
            summary="The register's teams of the kinds the plan's dispatch needs: available ones first, the incident's "
                    "town first, with their strength")
def dispatch_proposal(activation_id: str, _: Anyone) -> dict:
    from api.services.resources import dispatch_proposal

    found = dispatch_proposal(activation_id)
    if found is None:
        raise HTTPException(404, detail=f"no activation {activation_id!r}")
    return found


@router.post("/{activation_id}/dispatches", response_model=ActivationView,
             summary="Fire rescue drafts a dispatch plan (a returned one is redrafted)")
async def draft_dispatch(activation_id: str, body: DispatchBody, client: TemporalDep, caller: Acting) -> dict:
    return await _step(client, activation_id, "dispatch", DispatchIn(**_who(caller), **body.model_dump()))


ConsultBody = body_of(ConsultIn, "ConsultBody", "agree", "opinion", "note",
                      described={"note": "emergency management recording the sector's word"})


@router.post("/{activation_id}/dispatches/{seq}/consult", response_model=ActivationView,
             summary="The sector department's opinion on a dispatch plan (needed in flood and forest-fire seasons)")
async def consult(activation_id: str, seq: int, body: ConsultBody, client: TemporalDep, caller: Acting) -> dict:
    return await _step(client, activation_id, "consult", ConsultIn(**_who(caller), seq=seq, **body.model_dump()))


DecisionBody = body_of(DispatchDecisionIn, "DecisionBody", "decision", "comments")


@router.post("/{activation_id}/dispatches/{seq}/decision", response_model=ActivationView,
             summary="Emergency management approves (orders go out, the sector is informed) or returns a dispatch plan")
async def decide(activation_id: str, seq: int, body: DecisionBody, client: TemporalDep, caller: Acting) -> dict:
    return await _step(client, activation_id, "approve", DispatchDecisionIn(**_who(caller), seq=seq, **body.model_dump()))


# ------------------------------------------------------------------ reinforcement


ReinforceBody = body_of(ReinforceIn, "ReinforceBody", "kind", "detail", "quantity")


@router.post("/{activation_id}/reinforcements", response_model=ActivationView,
             summary="Request experts, teams or supplies from the city")
async def reinforce(activation_id: str, body: ReinforceBody, client: TemporalDep, caller: Acting) -> dict:
    return await _step(client, activation_id, "reinforce", ReinforceIn(**_who(caller), **body.model_dump()))


AnswerBody = body_of(ReinforceAnswerIn, "AnswerBody", "decision", "detail", "by_whom")


@router.post("/{activation_id}/reinforcements/{seq}/answer", response_model=ActivationView,
             summary="Record the city's answer to a reinforcement request")
async def answer(activation_id: str, seq: int, body: AnswerBody, client: TemporalDep, caller: Acting) -> dict:
    return await _step(client, activation_id, "answer", ReinforceAnswerIn(**_who(caller), seq=seq, **body.model_dump()))


# ------------------------------------------------------------------ 会商研判: experts convened


class MeetingBody(BaseModel):
    fields: list[str] = Field(min_length=1, max_length=20, description="the experts' fields needed (EXPERT_FIELDS)")
    at: datetime = Field(description="when the meeting is, with a time zone")
    place: str = Field(min_length=1, max_length=500)
    topic: str = Field(default="", max_length=2000)

    _at = field_validator("at")(lambda v: _aware(v))


class ConclusionBody(BaseModel):
    text: str = Field(min_length=1, max_length=8000, description="the meeting's conclusions")
    present: list[str] = Field(default_factory=list, max_length=200, description="expert ids at the meeting")


@router.post("/{activation_id}/consultations", response_model=ActivationView,
             summary="会商研判: call the register's experts of the fields needed (SMS with a link, then voice)")
async def convene_experts(activation_id: str, body: MeetingBody, client: TemporalDep, caller: Acting) -> dict:
    fields = list(dict.fromkeys(body.fields))
    experts = await asyncio.to_thread(svc.experts_of, fields)
    return await _step(client, activation_id, "meeting", ExpertMeetingIn(
        **_who(caller), fields=fields, at=body.at, place=body.place, topic=body.topic, experts=experts))


@router.post("/{activation_id}/consultations/{seq}/conclusions", response_model=ActivationView,
             summary="Record a 会商研判's conclusions against the activation")
async def conclude_meeting(activation_id: str, seq: int, body: ConclusionBody, client: TemporalDep,
                           caller: Acting) -> dict:
    return await _step(client, activation_id, "conclude", ConclusionIn(**_who(caller), seq=seq, **body.model_dump()))


# ------------------------------------------------------------------ acknowledging on someone's behalf


class ProxyAck(BaseModel):
    note: str = Field(min_length=1, max_length=1000, description="how it was confirmed, e.g. 电话确认已到岗")


@router.post("/{activation_id}/acks/{person_id}",
             summary="Confirm on someone's behalf everything they were called for in this response (by phone); "
                     "the plan's proxy roles decide who may, as for a task's or directive's acknowledgement")
async def ack_on_behalf(activation_id: str, person_id: str, body: ProxyAck, client: TemporalDep,
                        caller: DutyOfficer) -> dict:
    await _step(client, activation_id, "acknowledge_person",
                PersonAckIn(**_who(caller), person_id=person_id, note=body.note))
    return {"acknowledged": person_id, "workflows": 1}
