"""The pages people open from their phones: the 六问 form `/spotcheck/{token}` and the contact confirmation
`/confirm/{token}`. No bearer token: each link is signed, bound to one person, expires and works once."""
from __future__ import annotations

import asyncio
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from api.deps import SettingsDep
from api.services import duty as svc
from config import get_settings
from definitions.loader import cached_library
from store.directory import mask_mobile
from store.duty import CONFIRM_SALT, FORM_SALT, read_token
from store.links import LinkError

router = APIRouter()
templates = Jinja2Templates(directory=Path(__file__).resolve().parents[2] / "templates")
LINK_STATUS = {"expired": 410, "used": 409, "invalid": 403}
FORM_MAX_AGE = 8 * 86400


def _page(request: Request, template: str, status: int = 200, **ctx) -> HTMLResponse:
    return templates.TemplateResponse(request, template, ctx, status_code=status)


# ------------------------------------------------------------------ the 六问 form (SMS link)


@router.get("/spotcheck/{token}", response_class=HTMLResponse, include_in_schema=False)
def spotcheck_form(token: str, request: Request, settings: SettingsDep) -> HTMLResponse:
    try:
        data = read_token(settings.signing_key(), token, FORM_MAX_AGE, FORM_SALT)
        if svc.link_used(data):
            raise LinkError("used", "您已作答,谢谢 / this form was answered already")
    except LinkError as exc:
        return _page(request, "duty_form.html", LINK_STATUS[exc.reason], state="error", message=str(exc))
    ctx = svc.form_context(data["s"], data["p"])
    if ctx is None:
        return _page(request, "duty_form.html", 404, state="error", message="抽查不存在 / no such spot check")
    if ctx["answered"]:
        return _page(request, "duty_form.html", 409, state="error", message="您已作答,谢谢 / answered already")
    if ctx["check_status"] not in ("running", "closed"):  # (closed: answered late, recorded all the same)
        return _page(request, "duty_form.html", 409, state="error",
                     message="抽查尚未开始或已取消 / the spot check has not started or was skipped")
    return _page(request, "duty_form.html", state="form", **ctx)


@router.post("/spotcheck/{token}", response_class=HTMLResponse, include_in_schema=False)
async def spotcheck_form_answer(token: str, request: Request, settings: SettingsDep) -> HTMLResponse:
    try:
        data = read_token(settings.signing_key(), token, FORM_MAX_AGE, FORM_SALT)
        if await asyncio.to_thread(svc.link_used, data):
            raise LinkError("used", "您已作答,谢谢 / this form was answered already")
    except LinkError as exc:
        return _page(request, "duty_form.html", LINK_STATUS[exc.reason], state="error", message=str(exc))
    ctx = await asyncio.to_thread(svc.form_context, data["s"], data["p"])
    if ctx is None:
        return _page(request, "duty_form.html", 404, state="error", message="抽查不存在 / no such spot check")
    form = await request.form()
    answers = {}
    for n, q in enumerate(ctx["questions"], start=1):
        v = form.get(q["id"])
        if v not in ("yes", "no"):
            return _page(request, "duty_form.html", 422, state="form", error=f"请回答第{n}问 / "
                         f"please answer: {q['en']}", **ctx)
        answers[q["id"]] = v == "yes"
    client = await request.app.state.temporal()
    if client is None:
        return _page(request, "duty_form.html", 503, state="error", message="系统繁忙,请稍后重试 / please try again shortly")
    try:
        late = await svc.answer_by_link(client, data, answers)
    except svc.DutyError as exc:
        return _page(request, "duty_form.html", exc.status, state="error", message=str(exc))
    return _page(request, "duty_form.html", state="done", late=late,
                 no=[q for q in ctx["questions"] if not answers[q["id"]]])


# ------------------------------------------------------------------ the contact confirmation


def _confirm_max_age() -> int:
    lib = cached_library(get_settings().definitions_dir)  # a public page: no parse of every definition per request
    return int(lib.duty().freshness.link_valid.total_seconds()) if lib.duty() else 60 * 86400


@router.get("/confirm/{token}", response_class=HTMLResponse, include_in_schema=False)
def confirm_page(token: str, request: Request, settings: SettingsDep) -> HTMLResponse:
    try:
        data = read_token(settings.signing_key(), token, _confirm_max_age(), CONFIRM_SALT)
        if svc.link_used(data):
            raise LinkError("used", "您已确认,谢谢 / confirmed already")
    except LinkError as exc:
        return _page(request, "duty_confirm.html", LINK_STATUS[exc.reason], state="error", message=str(exc))
    p = svc.person(data["p"])
    if p is None:
        return _page(request, "duty_confirm.html", 404, state="error", message="人员不存在 / unknown person")
    return _page(request, "duty_confirm.html", state="form", name=p.name, mobile=mask_mobile(p.mobile),
                 mobile2=mask_mobile(p.mobile2) if p.mobile2 else "", records=svc.owned_records(data["p"]))


@router.post("/confirm/{token}", response_class=HTMLResponse, include_in_schema=False)
async def confirm(token: str, request: Request, settings: SettingsDep) -> HTMLResponse:
    try:
        data = read_token(settings.signing_key(), token, _confirm_max_age(), CONFIRM_SALT)
        if await asyncio.to_thread(svc.link_used, data):
            raise LinkError("used", "您已确认,谢谢 / confirmed already")
    except LinkError as exc:
        return _page(request, "duty_confirm.html", LINK_STATUS[exc.reason], state="error", message=str(exc))
    await svc.confirm_by_link(await request.app.state.temporal(), data)
    return _page(request, "duty_confirm.html", state="done")
