"""Users and tokens, for the admin only: the list, a new token for a role (shown once), a role changed,
a token revoked. Thin: the form is parsed here, the work is api/services/users.py."""
from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from api.console import auth
from api.console.pages import db, render
from api.console.roles import Role
from api.deps import RowId
from api.services import users as svc
from workflows.kit.roles import ROLE_NAMES

router = APIRouter(prefix="/console/users", tags=["console"], include_in_schema=False)
AdminUser = Annotated[auth.ConsoleUser, Depends(Role())]  # no role listed: the admin alone
DONE = ("role", "revoked")


async def _page(request: Request, status: int = 200, **ctx: Any) -> HTMLResponse:
    rows = await db(svc.listing)
    persons = await db(svc.people)
    done = request.query_params.get("done")
    return render(request, "users.html", status=status, rows=rows, persons=persons, roles=list(ROLE_NAMES),
                  done=done if done in DONE else None, **ctx)


@router.get("", response_class=HTMLResponse)
async def users(request: Request, user: AdminUser) -> HTMLResponse:
    return await _page(request)


@router.post("", response_class=HTMLResponse)
async def create(request: Request, user: AdminUser) -> Response:
    form = await request.form()
    try:
        token, row = await db(svc.create, user.caller.actor, str(form.get("role") or ""),
                              str(form.get("person_id") or ""), str(form.get("label") or ""), write=True)
    except svc.UserError as exc:
        return await _page(request, exc.status, error=str(exc))
    return await _page(request, 201, new_token=token, new_row=row)


@router.post("/{token_id}/role")
async def change_role(request: Request, token_id: RowId, user: AdminUser) -> Response:
    role = str((await request.form()).get("role") or "")
    try:
        await db(svc.change_role, user.caller.actor, token_id, role, write=True)
    except svc.UserError as exc:
        return await _page(request, exc.status, error=str(exc))
    return RedirectResponse("/console/users?done=role", status_code=303)


@router.post("/{token_id}/revoke")
async def revoke(request: Request, token_id: RowId, user: AdminUser) -> Response:
    try:
        await db(svc.revoke, user.caller.actor, token_id, write=True)
    except svc.UserError as exc:
        return await _page(request, exc.status, error=str(exc))
    return RedirectResponse("/console/users?done=revoked", status_code=303)
