"""Hotline work orders 工单: intake, the steps (分拨, 签收, 退回, 反馈, 办结, 审核, 回访, 转为事件), reading.

Every step is an update of `WorkOrderWorkflow`: its validators refuse a step by the wrong role or by a person who
is not of the unit the order is assigned to (403), out of order (409) or with bad input (422), and say why.
The hotline platform's own calls come by the signed webhook (api/routes/webhooks_hotline.py).
"""
from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from api.deps import Anyone, CallerDep, DutyOfficer, SettingsDep, TemporalDep, limit_param
from api.services import workorders as svc
from definitions.loader import cached_library
from workflows.workorder import (STATUS_ZH, AssignIn, CloseIn, CompleteIn, FeedbackIn, ReturnIn, SatisfactionIn, SignIn,
                                 WorkOrderWorkflow as W)

router = APIRouter(prefix="/api/workorders", tags=["work orders"])


@router.post("", status_code=201, summary="Receive a hotline work order (12345/110/119/120/12122) and start it",
             responses={200: {"description": "The ticket was sent before: the existing work order, duplicate: true"}})
async def receive(body: svc.WorkOrderIn, client: TemporalDep, settings: SettingsDep, caller: DutyOfficer):
    view, existed = await svc.start(client, settings, cached_library(settings.definitions_dir), body, caller.actor)
    return JSONResponse(status_code=200 if existed else 201, content={**svc.masked(view, caller.role, caller.person_id), "duplicate": existed})


@router.get("", summary="Work orders, newest first (the caller's number masked but for the duty office)")
def list_workorders(caller: Anyone, limit: Annotated[int, limit_param(1000)] = 100, status: str | None = None,
                    unit_id: str | None = None, source: str | None = None) -> list[dict]:
    svc.valid_filter("status", status, tuple(STATUS_ZH))
    svc.valid_filter("source", source, ("12345", "110", "119", "120", "12122"))
    return svc.workorder_list(caller.role, caller.person_id, max(1, min(limit, 1000)), status, unit_id, source)


@router.get("/{workorder_id}", summary="One work order: state, unit, each limit on time or late, feedback, 回访")
def get_workorder(workorder_id: str, caller: Anyone) -> dict:
    found = svc.workorder_detail(workorder_id, caller.role, caller.person_id)
    if found is None:
        raise HTTPException(404, detail=f"no work order {workorder_id!r}")
    return found


async def _step(client, workorder_id: str, action: str, update, req, role: str) -> dict:
    view = await svc.step(client, workorder_id, action, update, req)
    return svc.masked(view.model_dump(mode="json"), role, req.actor)


class AssignBody(BaseModel):
    unit_id: str = Field(min_length=1, max_length=50, description="a department or town (directory id)")
    note: str = Field(default="", max_length=2000)


@router.post("/{workorder_id}/assign", summary="分拨 (or 改派): the duty office assigns the order to a unit")
async def assign(workorder_id: str, body: AssignBody, client: TemporalDep, caller: CallerDep) -> dict:
    return await _step(client, workorder_id, "assign", W.assign,
                       AssignIn(actor=caller.actor, role=caller.role, **body.model_dump()), caller.role)


@router.post("/{workorder_id}/sign", summary="签收 by a person of the assigned unit")
async def sign(workorder_id: str, client: TemporalDep, caller: CallerDep) -> dict:
    return await _step(client, workorder_id, "sign", W.sign, SignIn(actor=caller.actor, role=caller.role), caller.role)


class ReasonBody(BaseModel):
    reason: str = Field(min_length=1, max_length=2000)


@router.post("/{workorder_id}/return", summary="退回 with the reason (wrong unit); the duty office reassigns it")
async def return_(workorder_id: str, body: ReasonBody, client: TemporalDep, caller: CallerDep) -> dict:
    return await _step(client, workorder_id, "return", W.return_,
                       ReturnIn(actor=caller.actor, role=caller.role, reason=body.reason), caller.role)


class TextBody(BaseModel):
    text: str = Field(min_length=1, max_length=10000)


@router.post("/{workorder_id}/feedback", summary="办理反馈 by the assigned unit (late marked)")
async def feedback(workorder_id: str, body: TextBody, client: TemporalDep, caller: CallerDep) -> dict:
    return await _step(client, workorder_id, "feedback", W.feedback,
                       FeedbackIn(actor=caller.actor, role=caller.role, text=body.text), caller.role)


class ResultBody(BaseModel):
    result: str = Field(min_length=1, max_length=10000)


@router.post("/{workorder_id}/complete", summary="办结 with the result, by the assigned unit")
async def complete(workorder_id: str, body: ResultBody, client: TemporalDep, caller: CallerDep) -> dict:
    return await _step(client, workorder_id, "complete", W.complete,
                       CompleteIn(actor=caller.actor, role=caller.role, result=body.result), caller.role)


class CloseBody(BaseModel):
    decision: Literal["close", "send_back"]
    reason: str = Field(default="", max_length=2000)


@router.post("/{workorder_id}/close", summary="The duty office checks: close it (回访 follows) or send it back")
async def close(workorder_id: str, body: CloseBody, client: TemporalDep, caller: CallerDep) -> dict:
    return await _step(client, workorder_id, "close", W.close,
                       CloseIn(actor=caller.actor, role=caller.role, **body.model_dump()), caller.role)


class SatisfactionBody(BaseModel):
    satisfaction: Literal["满意", "基本满意", "不满意"]
    comment: str = Field(default="", max_length=2000)


@router.post("/{workorder_id}/satisfaction", summary="回访: the caller's satisfaction, recorded by the duty office")
async def satisfaction(workorder_id: str, body: SatisfactionBody, client: TemporalDep, caller: CallerDep) -> dict:
    return await _step(client, workorder_id, "satisfaction", W.satisfaction,
                       SatisfactionIn(actor=caller.actor, role=caller.role, **body.model_dump()), caller.role)


class IncidentBody(BaseModel):
    summary: str | None = Field(default=None, max_length=10000, description="default: the caller's words")


@router.post("/{workorder_id}/incident", status_code=201,
             summary="转为突发事件: the incident's reporting chain starts, the order linked (both trails point at each other)")
async def to_incident(workorder_id: str, body: IncidentBody, client: TemporalDep, settings: SettingsDep,
                      caller: DutyOfficer) -> dict:
    view, incident = await svc.to_incident(client, settings, cached_library(settings.definitions_dir), workorder_id,
                                           caller.actor, caller.role, body.summary)
    return {**svc.masked(view.model_dump(mode="json"), caller.role, caller.person_id), "incident": incident}
