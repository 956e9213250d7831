"""Console login: by API token or by one-time SMS code, and logout (sessions and codes: auth.py)."""
from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Annotated, Any

import structlog
from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.background import BackgroundTask

from api.console import auth
from api.services import demo_logins as demo
from api.console.pages import render
from config import get_settings
from store.db import session_scope

router = APIRouter(prefix="/console", tags=["console"], include_in_schema=False)
log = structlog.get_logger("yingji.console")


@router.get("", include_in_schema=False)
def home() -> RedirectResponse:
    return RedirectResponse("/console/desk", status_code=303)


def _login_page(request: Request, status: int = 200, **ctx: Any) -> HTMLResponse:
    csrf = request.cookies.get(auth.LOGIN_CSRF_COOKIE) or auth.new_login_csrf()
    settings = get_settings()
    with session_scope(write=False) as s:
        roles = demo.demo_roles(s, settings, datetime.now(UTC))
    resp = render(request, "login.html", status=status, login_csrf=csrf, next=_safe_next(request), demo_roles=roles,
                  demo_codes=demo.offered(settings), **ctx)
    resp.set_cookie(auth.LOGIN_CSRF_COOKIE, csrf, max_age=3600, httponly=True, samesite="strict", path="/console")
    return resp


def _safe_next(request: Request, value: str | None = None) -> str:
    nxt = value or request.query_params.get("next") or "/console/desk"
    return nxt if nxt.startswith("/console") and not nxt.startswith("//") else "/console/desk"


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request) -> HTMLResponse:
    return _login_page(request)


async def _logged_in(request: Request, data: dict, nxt: str) -> Response:
    resp = RedirectResponse(_safe_next(request, nxt), status_code=303)
    auth.set_session(resp, request, await asyncio.to_thread(auth.session_cookie, get_settings(), data))
    resp.delete_cookie(auth.LOGIN_CSRF_COOKIE, path="/console")
    return resp


@router.post("/login/token")
async def login_token(request: Request, token: Annotated[str, Form(max_length=500)] = "",
                      next: Annotated[str, Form()] = "") -> Response:
    await auth.check_csrf(request, request.cookies.get(auth.LOGIN_CSRF_COOKIE))
    data = await asyncio.to_thread(auth.login_with_token, get_settings(), token)
    if data is None:
        return _login_page(request, 401, error="bad_token")
    return await _logged_in(request, data, next)


async def _send_code_after(settings, mobile: str, client: str) -> None:
    try:
        await auth.send_code(settings, mobile, client)
    except Exception:  # noqa: BLE001 - answered already; the log says why (masked)
        log.exception("login code not sent")


@router.post("/login/code")
async def login_code(request: Request, mobile: Annotated[str, Form(max_length=40)] = "",
                     next: Annotated[str, Form()] = "") -> Response:
    """The same answer, as fast, for a number that may log in, an unknown one and one over its caps:
    the code is made and sent after the answer (auth.py says why)."""
    cookie = request.cookies.get(auth.LOGIN_CSRF_COOKIE)
    await auth.check_csrf(request, cookie)
    resp = _login_page(request, info="code_sent", mobile=mobile, code_step=True)
    resp.background = BackgroundTask(_send_code_after, get_settings(), mobile, auth.client_hash(cookie))
    return resp


@router.post("/login/verify")
async def login_verify(request: Request, mobile: Annotated[str, Form(max_length=40)] = "",
                       code: Annotated[str, Form(max_length=12)] = "", next: Annotated[str, Form()] = "") -> Response:
    cookie = request.cookies.get(auth.LOGIN_CSRF_COOKIE)
    await auth.check_csrf(request, cookie)
    try:
        data = await asyncio.to_thread(auth.verify_code, get_settings(), mobile, code, auth.client_hash(cookie))
    except auth.CodeError as exc:
        return _login_page(request, 401, error=exc.reason, mobile=mobile, code_step=True)
    return await _logged_in(request, data, next)


@router.post("/login/demo")
async def login_demo(request: Request, role: Annotated[str, Form(max_length=40)] = "",
                     next: Annotated[str, Form()] = "") -> Response:
    """The demo's login as a role of its duty roster (demo_logins.py says when it is offered)."""
    await auth.check_csrf(request, request.cookies.get(auth.LOGIN_CSRF_COOKIE))
    settings = get_settings()

    def work():
        with session_scope() as s:
            return demo.demo_session(s, settings, role, datetime.now(UTC))

    data = await asyncio.to_thread(work)
    if data is None:
        return _login_page(request, 404, error="forbidden")
    return await _logged_in(request, data, next)


@router.get("/login/demo-code", response_class=HTMLResponse)
def demo_code(request: Request, mobile: str = "") -> HTMLResponse:
    """The demo's stand-in for the person's phone: the code the simulator sent to this browser."""
    found = demo.code_for(get_settings(), auth.client_hash(request.cookies.get(auth.LOGIN_CSRF_COOKIE)))
    return _login_page(request, mobile=mobile[:40], code_step=True, demo_code=found or ("", ""))


@router.post("/logout")
async def logout(request: Request, data: auth.Leaving) -> Response:
    """Ends the session server-side (the cookie stops working everywhere), then forgets the cookie."""
    await asyncio.to_thread(auth.end_session, data)
    resp = RedirectResponse("/console/login", status_code=303)
    resp.delete_cookie(auth.COOKIE, path="/")
    return resp
