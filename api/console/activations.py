"""Console pages of plan activation 分级响应: the list with an activation form, and the board of one
response: level, commanders and their acknowledgement, working groups, tasks and directives with
live countdowns and feedback, force dispatch, reinforcement requests, level change, termination.

Every action goes through `api.services.activations` like the REST API: the workflow's validators
decide who may act and in which order, and their reason is shown as it is.
"""
from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from api.console import auth, roles
from api.console.i18n_resources import RESOURCE_STRINGS
from api.console.pages import db, form_error, library, render, temporal_url
from api.deps import get_temporal
from api.services import activations as svc
from api.services.dates import local_range
from api.services.errors import ServiceError
from api.services.incidents import incident_list
from api.services import supplies as supplies_svc
from api.services.resources import dispatch_proposal
from config import get_settings
from workflows.activation import (
    ConsultIn,
    DirectiveIn,
    DispatchDecisionIn,
    DispatchIn,
    FeedbackIn,
    ItemIn,
    ItemReviewIn,
    LevelIn,
    ReinforceAnswerIn,
    ReinforceIn,
    TerminateIn,
)

router = APIRouter(prefix="/console/activations", tags=["console"], include_in_schema=False)
ACTING = roles.ACTING  # as the REST API
LEVELS = {"I": ("Ⅰ级 特别重大", "Level I"), "II": ("Ⅱ级 重大", "Level II"), "III": ("Ⅲ级 较大", "Level III"),
          "IV": ("Ⅳ级 一般", "Level IV")}


def _text(form: Any, name: str) -> str:
    return str(form.get(name) or "").strip()


def _seq(form: Any) -> int:
    value = _text(form, "seq")
    return int(value) if value.isdigit() else 0


def _request(action: str, form: Any, who: dict) -> tuple[str, Any]:
    """The workflow request of a console action: (service action, request)."""
    note = _text(form, "note") or None
    if action == "directive":
        return "directive", DirectiveIn(**who, text=_text(form, "text"), title=_text(form, "title"),
                                        assignee=_text(form, "assignee"), due_in=_text(form, "due_in") or None)
    if action == "acknowledge":
        return "acknowledge", ItemIn(**who, item_id=_text(form, "item_id"), note=note)
    if action == "feedback":
        return "feedback", FeedbackIn(**who, item_id=_text(form, "item_id"), kind=_text(form, "kind"),
                                      text=_text(form, "text"), note=note)
    if action == "review":
        return "review", ItemReviewIn(**who, item_id=_text(form, "item_id"), decision=_text(form, "decision"),
                                      comments=_text(form, "comments"), due_in=_text(form, "due_in") or None)
    if action == "level":
        return "level", LevelIn(**who, level=_text(form, "level"), reason=_text(form, "reason"))
    if action == "terminate":
        return "terminate", TerminateIn(**who, reason=_text(form, "reason"))
    if action == "dispatch":
        forces = [f for f in form.getlist("forces") if f]
        teams = [t for t in form.getlist("teams") if t]  # teams of the resource register (marked busy)
        return "dispatch", DispatchIn(**who, forces=forces, teams=teams, task=_text(form, "task"),
                                      place=_text(form, "place"), note=note)
    if action == "consult":
        return "consult", ConsultIn(**who, seq=_seq(form), agree=_text(form, "agree") == "yes",
                                    opinion=_text(form, "opinion"), note=note)
    if action == "decide":
        return "approve", DispatchDecisionIn(**who, seq=_seq(form), decision=_text(form, "decision"),
                                             comments=_text(form, "comments"))
    if action == "reinforce":
        return "reinforce", ReinforceIn(**who, kind=_text(form, "kind"), detail=_text(form, "detail"),
                                        quantity=_text(form, "quantity"))
    if action == "answer":
        return "answer", ReinforceAnswerIn(**who, seq=_seq(form), decision=_text(form, "decision"),
                                           detail=_text(form, "detail"), by_whom=_text(form, "by_whom"))
    raise LookupError(action)


assert "act_register_teams" in RESOURCE_STRINGS  # imported for its strings (the dispatch form's register teams)

ACTIONS = ("directive", "acknowledge", "feedback", "review", "level", "terminate", "dispatch", "consult", "decide",
           "reinforce", "answer")


async def _board(request: Request, activation_id: str, status: int = 200, error: str | None = None) -> HTMLResponse:
    view = await asyncio.to_thread(svc.detail, activation_id)
    if view is None:
        return render(request, "message.html", status=404, kind="error", message=f"no activation {activation_id!r} / 无此响应")
    lib = await asyncio.to_thread(library)
    plan = lib.response_plan(view["plan_id"])
    proposal = await asyncio.to_thread(dispatch_proposal, activation_id)  # the register's teams of the plan's kinds
    supplies = await db(supplies_svc.listing, activation_id)  # 物资调拨 (its steps: /api/activations/{id}/supplies)
    return render(request, "activation.html", status=status, a=view, error=error, plan=plan.model if plan else None,
                  proposal=proposal, supplies=supplies,
                  level_names=LEVELS, temporal_url=temporal_url(get_settings(), view["workflow_id"]),
                  acting=ACTING, now=datetime.now(UTC))


async def _listing(request: Request, status: int = 200, error: str | None = None,
                   kept: dict[str, str] | None = None) -> HTMLResponse:
    date_from, date_to = (str(request.query_params.get(k) or "")[:10] for k in ("date_from", "date_to"))
    try:
        dates = local_range(date_from, date_to)
    except ServiceError as exc:
        dates, status, error = None, exc.status, error or str(exc)
    rows = await asyncio.to_thread(svc.listing, 200, None, None, dates=dates) if dates else []
    lib = await asyncio.to_thread(library)
    incidents = await asyncio.to_thread(incident_list, 50, "open", None)
    plans = {pid: loaded.model for pid, loaded in sorted(lib.of("plans").items())}
    return render(request, "activations.html", status=status, activations=rows, plans=plans, incidents=incidents,
                  date_from=date_from, date_to=date_to,
                  level_names=LEVELS, acting=ACTING, error=error, now=datetime.now(UTC), kept=kept or {},
                  conditions=svc.start_conditions(plans), proposals=svc.proposals(plans, incidents))


@router.get("", response_class=HTMLResponse)
async def activation_list(request: Request, user: auth.Viewer) -> HTMLResponse:
    return await _listing(request)


@router.post("")
async def activate(request: Request, user: roles.ActingUser) -> Response:
    form = await request.form()
    kept = {k: _text(form, k) for k in ("plan", "level", "incident_id", "reason")}  # a refused form keeps them
    try:
        data = svc.ActivationIn(plan=_text(form, "plan"), level=_text(form, "level"),
                                incident_id=_text(form, "incident_id"), reason=_text(form, "reason"))
        view, _ = await svc.start(await get_temporal(request), get_settings(), await asyncio.to_thread(library), data,
                                  user.caller.actor, user.role)
    except ValidationError as exc:
        return await _listing(request, 422, form_error(exc), kept)
    except svc.ActivationError as exc:
        return await _listing(request, exc.status, str(exc), kept)
    return RedirectResponse(f"/console/activations/{view.activation_id}", status_code=303)


@router.get("/{activation_id}", response_class=HTMLResponse)
async def board(request: Request, activation_id: str, user: auth.Viewer) -> HTMLResponse:
    return await _board(request, activation_id)


@router.post("/{activation_id}/{action}", response_class=HTMLResponse)
async def act(request: Request, activation_id: str, action: str,
              user: Annotated[auth.ConsoleUser, Depends(roles.acting_on(ACTIONS, ACTING, "unknown action"))]) -> Response:
    form = await request.form()
    try:
        step, req = _request(action, form, {"actor": user.caller.actor, "role": user.role})
        await svc.step(await get_temporal(request), activation_id, step, req)
    except ValidationError as exc:
        return await _board(request, activation_id, 422, form_error(exc))
    except svc.ActivationError as exc:
        return await _board(request, activation_id, exc.status, str(exc))
    return RedirectResponse(f"/console/activations/{activation_id}?done={action}", status_code=303)
