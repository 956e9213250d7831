"""Console pages of the hotline work orders 工单: the list (countdowns to each order's next limit, a form to take
an order in), and the page of one order: its unit and each limit (on time, late, overdue), the assignments
(returned ones with their reason), the feedback, 回访 and the linked incident, with the forms of the steps the
caller may take (分拨/改派, 签收, 退回, 反馈, 办结, 审核, 回访, 转为突发事件).

Every action goes through `api.services.workorders` like the REST API: the workflow's validators decide who may
act on which order, and their reason is shown as it is. The caller's number is masked but for the duty office.
"""
from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from api.console import auth, roles
from api.console.i18n_workorders import WORKORDER_STRINGS
from api.console.pages import db, form_error, library, render
from api.deps import get_temporal
from api.services import workorders as svc
from config import get_settings
from store.workorders import unit_statistics
from workflows.workorder import (STATUS_ZH, AssignIn, CloseIn, CompleteIn, FeedbackIn, ReturnIn, SatisfactionIn,
                                 SignIn, WorkOrderWorkflow as W)

router = APIRouter(prefix="/console/workorders", tags=["console"], include_in_schema=False)
OPEN = ("received", "assigned", "signed", "returned", "completed", "sent_back")
assert "workorders" in WORKORDER_STRINGS  # imported for its strings (added to the console's table on import)


def _text(form: Any, name: str) -> str:
    return str(form.get(name) or "").strip()


def next_due(w: dict) -> str | None:
    """The next limit of an order still in the unit's hands (the countdown)."""
    if w["status"] not in ("assigned", "signed", "sent_back"):
        return None
    a = w["assignments"][-1] if w.get("assignments") else None
    if a is None:
        return None
    due = [d["due_at"] for d in a["deadlines"] if not d.get("met_at")]
    return min(due) if due else None


async def _listing(request: Request, user, code: int = 200, error: str | None = None, form: dict | None = None,
                   status: str | None = None) -> HTMLResponse:
    rows = await asyncio.to_thread(svc.workorder_list, user.role, user.person_id, 200,
                                   status if status in STATUS_ZH else None)
    for w in rows:
        w["next_due"] = next_due(w)
    lib = await asyncio.to_thread(library)
    loaded = lib.workorder_rules()
    since = datetime.now(UTC) - timedelta(days=30)
    stats = sorted((await db(unit_statistics, since)).values(), key=lambda u: (-u.assigned, u.unit_id))
    return render(request, "workorders.html", status=code, orders=rows, error=error, form=form or {}, stats=stats,
                  categories=list(loaded.model.categories) if loaded else [], statuses=STATUS_ZH,
                  status_filter=status or "", now=datetime.now(UTC))


@router.get("", response_class=HTMLResponse)
async def workorder_list(request: Request, user: auth.Viewer, status: str | None = None) -> HTMLResponse:
    return await _listing(request, user, status=status)


@router.post("")
async def take_in(request: Request, user: roles.DutyUser) -> Response:
    form = await request.form()
    kept = {k: _text(form, k) for k in ("ticket", "source", "category", "urgency", "place", "town_id", "words",
                                        "caller_phone")}
    try:
        data = svc.WorkOrderIn(**{k: v or None if k in ("town_id", "caller_phone") else v for k, v in kept.items()})
        view, _ = await svc.start(await get_temporal(request), get_settings(), await asyncio.to_thread(library), data,
                                  user.caller.actor)
    except ValidationError as exc:
        return await _listing(request, user, 422, form_error(exc), kept)
    except svc.WorkOrderError as exc:
        return await _listing(request, user, exc.status, str(exc), kept)
    return RedirectResponse(f"/console/workorders/{view['id']}", status_code=303)


async def _page(request: Request, user, workorder_id: str, status: int = 200, error: str | None = None,
                form: dict | None = None) -> HTMLResponse:
    w = await asyncio.to_thread(svc.workorder_detail, workorder_id, user.role, user.person_id)
    if w is None:
        return render(request, "message.html", status=404, kind="error",
                      message=f"无此工单 / no work order {workorder_id!r}")
    w["next_due"] = next_due(w)
    return render(request, "workorder.html", status=status, w=w, error=error, form=form or {}, now=datetime.now(UTC))


@router.get("/{workorder_id}", response_class=HTMLResponse)
async def workorder_page(request: Request, workorder_id: str, user: auth.Viewer) -> HTMLResponse:
    return await _page(request, user, workorder_id)


ACTIONS = ("assign", "sign", "return", "feedback", "complete", "close", "satisfaction", "incident")
UPDATES = {"assign": W.assign, "sign": W.sign, "return": W.return_, "feedback": W.feedback, "complete": W.complete,
           "close": W.close, "satisfaction": W.satisfaction}


@router.post("/{workorder_id}/{action}", response_class=HTMLResponse)
async def act(request: Request, workorder_id: str, action: str, user: auth.Poster) -> Response:
    if action not in ACTIONS:
        return render(request, "message.html", status=404, kind="error", message=f"unknown action {action!r}")
    form = await request.form()
    who = {"actor": user.caller.actor, "role": user.role}
    kept = {k: _text(form, k) for k in ("unit_id", "note", "reason", "text", "result", "decision", "satisfaction",
                                        "comment")}
    client = await get_temporal(request)
    try:
        if action == "incident":
            await svc.to_incident(client, get_settings(), await asyncio.to_thread(library), workorder_id,
                                  user.caller.actor, user.role)
        else:
            req: Any = {"assign": lambda: AssignIn(**who, unit_id=kept["unit_id"], note=kept["note"]),
                        "sign": lambda: SignIn(**who),
                        "return": lambda: ReturnIn(**who, reason=kept["reason"]),
                        "feedback": lambda: FeedbackIn(**who, text=kept["text"]),
                        "complete": lambda: CompleteIn(**who, result=kept["result"]),
                        "close": lambda: CloseIn(**who, decision=kept["decision"] or "close", reason=kept["reason"]),
                        "satisfaction": lambda: SatisfactionIn(**who, satisfaction=kept["satisfaction"],
                                                               comment=kept["comment"])}[action]()
            await svc.step(client, workorder_id, action, UPDATES[action], req)
    except ValidationError as exc:
        return await _page(request, user, workorder_id, 422, form_error(exc), kept)
    except svc.WorkOrderError as exc:
        return await _page(request, user, workorder_id, exc.status, str(exc), kept)
    return RedirectResponse(f"/console/workorders/{workorder_id}?done={action}", status_code=303)
