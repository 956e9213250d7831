"""Response proposals 响应建议 (预警和响应一体化): read, accept, decline; and the page behind the signed link in
the proposal's SMS (GET shows it, POST decides: the token in the path is the credential, bound to one person
and one proposal, usable once, so no cookie is involved and no other site can decide for anyone)."""
from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from pydantic import BaseModel, Field

from api.deps import Anyone, Caller, SettingsDep, TemporalDep, require
from api.services import proposals as svc
from store.db import session_scope
from store.links import LinkError, consume, is_used
from store.proposals import read_link_token
from workflows.proposal import LEVEL_ZH, STATUS_ZH, WARNING_ZH

router = APIRouter(tags=["proposals"])
templates = Jinja2Templates(directory=Path(__file__).resolve().parents[1] / "templates")
LINK_STATUS = {"expired": 410, "used": 409, "invalid": 403}
Deciding = Annotated[Caller, Depends(require("duty_staff", "duty_cadre", "duty_chief", "leading_leader", "commander"))]


class DeclineBody(BaseModel):
    reason: str = Field(min_length=1, max_length=2000, description="why the response is not started (required)")


@router.get("/api/proposals/{proposal_id}", summary="One response proposal: the warning, the plan and level proposed, "
                                                     "who was asked, the decision and the activation it started")
def get_proposal(proposal_id: str, _: Anyone) -> dict:
    found = svc.detail(proposal_id)
    if found is None:
        raise HTTPException(404, detail=f"无此响应建议 / no proposal {proposal_id!r}")
    return found


@router.post("/api/proposals/{proposal_id}/accept", summary="Accept: the incident is received from the warning and "
                                                             "the plan activated at the level proposed")
async def accept(proposal_id: str, client: TemporalDep, caller: Deciding) -> dict:
    view = await svc.decide(client, proposal_id, "accept", caller.actor, caller.role)
    return view.model_dump(mode="json")


@router.post("/api/proposals/{proposal_id}/decline", summary="Decline, with the reason")
async def decline(proposal_id: str, body: DeclineBody, client: TemporalDep, caller: Deciding) -> dict:
    view = await svc.decide(client, proposal_id, "decline", caller.actor, caller.role, reason=body.reason)
    return view.model_dump(mode="json")


# ------------------------------------------------------------------ the signed link page


def _page(request: Request, status: int = 200, **ctx) -> HTMLResponse:
    return templates.TemplateResponse(request, "proposal.html", ctx, status_code=status)


def _read(settings, token: str) -> dict:
    data = read_link_token(settings.signing_key(), token)
    with session_scope(write=False) as s:
        if is_used(s, data):
            raise LinkError("used", "此链接已使用过 / this link has been used already")
    return data


def _words(view: dict) -> dict:
    w = view.get("warning") or {}
    return {"warning": f"{w.get('event') or ''}{WARNING_ZH.get(w.get('level'), w.get('level') or '')}预警",
            "headline": w.get("headline") or "", "plan": view.get("plan_name") or "",
            "level": LEVEL_ZH.get(view.get("level"), view.get("level") or ""),
            "condition": view.get("start_condition") or "", "status_zh": STATUS_ZH.get(view.get("status"), "")}


def _role_of(view: dict, person_id: str) -> str:
    """The role the link's holder decides in: the leading leader it was sent to, else as a commander (the district
    head it escalated to; the plan and the activation check that role)."""
    leader = (view.get("leader") or {}).get("person_id")
    return "leading_leader" if person_id == leader else "commander"


@router.get("/proposal/{token}", response_class=HTMLResponse, include_in_schema=False)
async def link_page(token: str, request: Request, settings: SettingsDep) -> HTMLResponse:
    try:
        data = await asyncio.to_thread(_read, settings, token)
    except LinkError as exc:
        return _page(request, LINK_STATUS[exc.reason], state="error", message=str(exc))
    view = await asyncio.to_thread(svc.detail, data["s"])
    if view is None:
        return _page(request, 404, state="error", message="无此响应建议 / no such proposal")
    if view.get("status") != "proposed":
        return _page(request, 409, state="error", message=f"该响应建议{STATUS_ZH.get(view.get('status'), '')},无需再处理")
    return _page(request, state="form", **_words(view))


def _spend(data: dict) -> None:
    with session_scope() as s:
        consume(s, data)


@router.post("/proposal/{token}", response_class=HTMLResponse, include_in_schema=False)
async def link_decide(token: str, request: Request, settings: SettingsDep) -> HTMLResponse:
    try:
        data = await asyncio.to_thread(_read, settings, token)
    except LinkError as exc:
        return _page(request, LINK_STATUS[exc.reason], state="error", message=str(exc))
    view = await asyncio.to_thread(svc.detail, data["s"])
    if view is None:
        return _page(request, 404, state="error", message="无此响应建议 / no such proposal")
    form = await request.form()
    decision, reason = form.get("decision"), str(form.get("reason") or "").strip()
    if decision not in ("accept", "decline"):
        return _page(request, 422, state="form", error="请选择同意或不同意", **_words(view))
    if decision == "decline" and not reason:
        return _page(request, 422, state="form", error="不同意须填写理由", **_words(view))
    client = await request.app.state.temporal()
    if client is None:  # nothing spent: the link stays usable
        return _page(request, 503, state="error", message="系统繁忙,请稍后重试")
    try:
        done = await svc.decide(client, data["s"], decision, data["p"], _role_of(view, data["p"]), via="link",
                                reason=reason or None)
        await asyncio.to_thread(_spend, data)
    except svc.ProposalError as exc:
        return _page(request, exc.status, state="error", message=str(exc))
    except LinkError as exc:
        return _page(request, LINK_STATUS[exc.reason], state="error", message=str(exc))
    return _page(request, state=done.status, activation_id=done.activation_id, **_words(view))
