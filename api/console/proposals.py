"""Console page of a response proposal 响应建议 (预警和响应一体化): the warning, the plan and level proposed, who was
told, and the leader's one-tap acceptance or a decline with its reason. Both go through api/services/proposals.py
like the REST API: the workflow's validators decide who may decide, and their reason is shown as it is."""
from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from api.console import auth, roles
from api.console.pages import render
from api.deps import get_temporal
from api.services import proposals as svc

router = APIRouter(prefix="/console/proposals", tags=["console"], include_in_schema=False)


async def _page(request: Request, proposal_id: str, status: int = 200, error: str | None = None) -> HTMLResponse:
    view = await asyncio.to_thread(svc.detail, proposal_id)
    if view is None:
        return render(request, "message.html", status=404, kind="error",
                      message=f"无此响应建议 / no proposal {proposal_id!r}")
    return render(request, "proposal.html", status=status, p=view, error=error, acting=roles.ACTING)


@router.get("/{proposal_id}", response_class=HTMLResponse)
async def page(request: Request, proposal_id: str, user: auth.Viewer) -> HTMLResponse:
    return await _page(request, proposal_id)


@router.post("/{proposal_id}/{action}", response_class=HTMLResponse)
async def decide(request: Request, proposal_id: str, action: str, user: roles.ActingUser) -> Response:
    if action not in ("accept", "decline"):
        return await _page(request, proposal_id, 404, "未知操作 / unknown action")
    form = await request.form()
    try:
        await svc.decide(await get_temporal(request), proposal_id, action, user.caller.actor, user.role, via="console",
                         reason=str(form.get("reason") or "").strip() or None)
    except svc.ProposalError as exc:
        return await _page(request, proposal_id, exc.status, str(exc))
    return RedirectResponse(f"/console/proposals/{proposal_id}?done={action}", status_code=303)
