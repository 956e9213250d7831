"""Incidents and their reporting chain 信息报送: intake, the verbal report, drafts, review, submission, status.

Every step is an update of `IncidentReportingWorkflow`: its validators refuse a step
by the wrong role (403) or out of order (409), and say why.
"""
from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from api.deps import Anyone, DateFrom, DateTo, DutyOfficer, SettingsDep, TemporalDep, limit_param
from api.routes.bodies import body_of
from api.services.dates import local_range
from api.services import incidents as svc
from api.services.answers import AnswerError, acknowledge
from api.services.shapes import AckOut
from definitions.loader import cached_library
from definitions.schema.reporting import CATEGORIES
from workflows.reporting import ChainView, Draft, DraftIn, ReviewIn, SubmitIn, VerbalIn, VerticalIn

router = APIRouter(prefix="/api/incidents", tags=["incidents"])


class ChainOpened(ChainView):
    duplicate: bool = Field(description="sent before (same id): its chain as it stands, answered with 200")


async def _step(client, incident_id: str, action: str, req):
    view = await svc.step(client, incident_id, action, req)
    return view.model_dump(mode="json")


@router.post("", status_code=201, response_model=ChainOpened, summary="Receive an incident (接报) and start its reporting chain",
             responses={200: {"model": ChainOpened,
                              "description": "Sent before (same id): its chain as it stands, with duplicate: true"}})
async def receive(body: svc.IncidentIn, client: TemporalDep, settings: SettingsDep, caller: DutyOfficer):
    view, existed = await svc.start(client, settings, cached_library(settings.definitions_dir), body, caller.actor)
    return JSONResponse(status_code=200 if existed else 201,
                        content={**view.model_dump(mode="json"), "duplicate": existed})


@router.get("", summary="Incidents, newest first: status, next deadline, late and overdue counts")
def list_incidents(_: Anyone, limit: Annotated[int, limit_param(1000)] = 100, status: str | None = None, category: str | None = None,
                   date_from: DateFrom = None, date_to: DateTo = None) -> list[dict]:
    svc.valid_filter("status", status, ("open", "closed"))
    svc.valid_filter("category", category, CATEGORIES)
    return svc.incident_list(max(1, min(limit, 1000)), status, category, dates=local_range(date_from, date_to))


@router.get("/{incident_id}", summary="One incident: deadlines (on time or late by how much), reports, receipts, late marks")
def get_incident(incident_id: str, _: Anyone) -> dict:
    found = svc.incident_detail(incident_id)
    if found is None:
        raise HTTPException(404, detail=f"no incident {incident_id!r}")
    return found


VerbalBody = body_of(VerbalIn, "VerbalBody", "to_whom", "by_whom", "at", "channel", "note",
                     described={"at": "when it was made; default: now"})


@router.post("/{incident_id}/verbal", response_model=ChainView,
             summary="Record the verbal report 口头报告: to whom, by whom, when")
async def verbal(incident_id: str, body: VerbalBody, client: TemporalDep, caller: DutyOfficer) -> dict:
    if body.at is not None and body.at.tzinfo is None:
        raise HTTPException(422, detail="at: give a time zone, e.g. 2026-07-01T03:40:00+08:00")
    return await _step(client, incident_id, "verbal", VerbalIn(actor=caller.actor, role=caller.role, **body.model_dump()))


class VerticalBody(BaseModel):
    to_whom: str = Field(min_length=1, max_length=200, description="the city department, e.g. 市气象局值班室")
    at: datetime = Field(description="when the department reported to it (with a time zone)")
    note: str | None = Field(default=None, max_length=2000)


@router.post("/{incident_id}/vertical", response_model=ChainView,
             summary="拉条: record the department's own report to its city department; a gap to the district is flagged")
async def vertical(incident_id: str, body: VerticalBody, client: TemporalDep, caller: DutyOfficer) -> dict:
    if body.at.tzinfo is None:
        raise HTTPException(422, detail="at: give a time zone, e.g. 2026-07-01T03:40:00+08:00")
    await asyncio.to_thread(svc.check_vertical_line, incident_id)
    return await _step(client, incident_id, "vertical", VerticalIn(actor=caller.actor, role=caller.role,
                                                                   **body.model_dump()))


@router.post("/{incident_id}/draft", response_model=ChainView,
             summary="Draft (or redraft, once returned) the current written report")
async def draft(incident_id: str, body: Draft, client: TemporalDep, caller: DutyOfficer) -> dict:
    return await _step(client, incident_id, "draft", DraftIn(actor=caller.actor, role=caller.role, draft=body))


class ReviewBody(BaseModel):
    decision: str = Field(pattern="^(approve|return)$", description="approve | return")
    comments: str = Field(default="", max_length=5000, description="required when returning")
    version: int | None = Field(default=None, ge=1, description="the version reviewed")


@router.post("/{incident_id}/review", response_model=ChainView,
             summary="The leading leader approves the draft or returns it with comments")
async def review(incident_id: str, body: ReviewBody, client: TemporalDep, caller: DutyOfficer) -> dict:
    return await _step(client, incident_id, "review", ReviewIn(actor=caller.actor, role=caller.role,
                                                               **body.model_dump()))


@router.post("/{incident_id}/submit", response_model=ChainView,
             summary="Submit the approved report to every recipient (receipts recorded)")
async def submit(incident_id: str, client: TemporalDep, caller: DutyOfficer) -> dict:
    return await _step(client, incident_id, "submit", SubmitIn(actor=caller.actor, role=caller.role))


@router.post("/{incident_id}/followups", response_model=ChainView,
             summary="Start the next follow-up report 续报 with its draft")
async def followup(incident_id: str, body: Draft, client: TemporalDep, caller: DutyOfficer) -> dict:
    return await _step(client, incident_id, "followup", DraftIn(actor=caller.actor, role=caller.role, draft=body))


@router.post("/{incident_id}/final", response_model=ChainView,
             summary="Start the final report 终报 with its draft; submitting it closes the chain")
async def final(incident_id: str, body: Draft, client: TemporalDep, caller: DutyOfficer) -> dict:
    return await _step(client, incident_id, "final", DraftIn(actor=caller.actor, role=caller.role, draft=body))


class ProxyAck(BaseModel):
    note: str = Field(min_length=1, max_length=1000, description="how it was confirmed, e.g. 电话确认已收到")


@router.post("/{incident_id}/acks/{person_id}", response_model=AckOut,
             summary="Confirm on someone's behalf: a recipient's receipt by phone, a leader on the way, …")
async def ack_on_behalf(incident_id: str, person_id: str, body: ProxyAck, client: TemporalDep,
                        caller: DutyOfficer) -> dict:
    if await asyncio.to_thread(svc.find, incident_id) is None:
        raise HTTPException(404, detail=f"no incident {incident_id!r}")
    now = datetime.now(UTC)
    try:
        answered = await acknowledge(client, incident_id, person_id, "proxy", actor=caller.actor, note=body.note,
                                 ref=f"proxy:{caller.actor}:{person_id}:{now.timestamp()}", at=now)
    except AnswerError as exc:
        raise HTTPException(404, detail=str(exc)) from exc
    return {"acknowledged": person_id, **answered.as_dict()}
