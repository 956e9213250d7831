"""The monthly bulletin 通报 in the console (api/services/bulletins.py): the months, one month's bulletin with its
period, filters (towns or departments, only the units below a threshold) and charts, each figure a link to the
unit's scorecard page for the month; the leading leader's 审定 and 退回 (the workflow's updates: any other role is
answered with the workflow's refusal), the PDF."""
from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from api.console import auth, roles
from api.console.pages import db, render
from api.deps import get_temporal
from api.services import bulletins as svc
from api.services.errors import ServiceError
from config import get_settings
from store.bulletins import charts
from store.db import session_scope

router = APIRouter(prefix="/console/bulletins", tags=["console"], include_in_schema=False)
ACTIONS = ("approve", "return")


Chief = Annotated[auth.ConsoleUser, Depends(roles.Role(*roles.CHIEFS))]


async def _listing(request: Request, user: auth.ConsoleUser, status: int = 200, error: str | None = None) -> HTMLResponse:
    rows = await db(svc.listing)
    return render(request, "bulletins.html", status=status, rows=rows, b=None, error=error,
                  may_start=user.may(*roles.CHIEFS))


@router.get("", response_class=HTMLResponse)
async def bulletin_list(request: Request, user: roles.LogReader) -> HTMLResponse:
    return await _listing(request, user)


@router.post("", response_class=HTMLResponse)
async def start(request: Request, user: Chief) -> Response:
    """Compile a month's bulletin now (default: the last month), as POST /api/bulletins."""
    form = await request.form()
    month = str(form.get("month") or "").strip()[:7] or None
    try:
        out = await svc.start(await get_temporal(request), get_settings(), month, user.caller.actor)
    except ServiceError as exc:
        return await _listing(request, user, exc.status, str(exc))
    return RedirectResponse(f"/console/bulletins?started={out['id']}", status_code=303)


@router.get("/{bulletin_id}", response_class=HTMLResponse)
async def bulletin_page(request: Request, bulletin_id: str, user: roles.LogReader, kind: str = "",
                        below: str = "") -> HTMLResponse:
    try:
        b = await db(svc.one, bulletin_id, kind or None, below == "1")
    except ServiceError as exc:
        return render(request, "message.html", status=exc.status, kind="error", message=str(exc))
    return render(request, "bulletins.html", rows=[], b=b, c=b["content"], svg=charts(b["content"]), kind=kind,
                  below=below == "1", may_decide=user.role == "leading_leader" and b["status"] == "awaiting")


@router.get("/{bulletin_id}/pdf")
async def bulletin_pdf(request: Request, bulletin_id: str, user: roles.LogReader) -> Response:
    def read():
        with session_scope(write=False) as s:
            data, row = svc.pdf(s, bulletin_id)
            return data, row.version

    try:
        data, version = await asyncio.to_thread(read)
    except ServiceError as exc:
        return render(request, "message.html", status=exc.status, kind="error", message=str(exc))
    return Response(data, media_type="application/pdf",
                    headers={"Content-Disposition": f'inline; filename="bulletin-{bulletin_id}-v{version}.pdf"'})


@router.post("/{bulletin_id}/{action}", response_class=HTMLResponse)
async def act(request: Request, bulletin_id: str, action: str, user: auth.Poster) -> Response:
    if action not in ACTIONS:
        return render(request, "message.html", status=404, kind="error", message=f"无此操作 / unknown action {action!r}")
    form = await request.form()
    reason = str(form.get("reason") or "")[:2000]
    try:
        await svc.decide(await get_temporal(request), bulletin_id, action, user.caller.actor, user.role, reason)
    except ServiceError as exc:
        return render(request, "message.html", status=exc.status, kind="error", message=str(exc))
    return RedirectResponse(f"/console/bulletins/{bulletin_id}", status_code=303)
