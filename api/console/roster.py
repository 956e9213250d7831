"""The weekly duty roster 值班表 (`/console/roster?week=2026-W49`): each day of the week with the posts of the
1+1+X+X, the persons, their shift times and duty phone; previous/next week; printable on one A4 landscape
page, and as a PDF (the one PDF renderer, store.report.render_pdf)."""
from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from api.console import auth
from api.console.i18n import STRINGS, lang_of, translator
from api.console.i18n import COOKIE as LANG_COOKIE
from api.console.pages import db, render, templates
from api.deps import DUTY
from api.services import roster as svc
from config import get_settings
from store.report import FONT_STACK, render_pdf

router = APIRouter(prefix="/console", tags=["console"], include_in_schema=False)

STRINGS.update({
    "roster": ("值班表", "Duty roster"),
    "roster_week": ("周次", "Week"),
    "roster_prev": ("上一周", "Previous week"),
    "roster_next": ("下一周", "Next week"),
    "roster_this": ("本周", "This week"),
    "roster_print": ("打印", "Print"),
    "roster_pdf": ("下载PDF", "Download PDF"),
    "roster_post": ("岗位", "Post"),
    "roster_shift_times": ("班次时间", "Shift times"),
    "roster_empty": ("本周没有排班。", "No shifts this week."),
    "roster_printed": ("打印时间", "Printed"),
})


def _week(request: Request, week: str | None) -> str:
    return week or svc.week_of(datetime.now(ZoneInfo(get_settings().timezone)).date())


async def _data(week: str, user: auth.ConsoleUser) -> dict[str, Any]:
    return await db(svc.week_roster, week, get_settings().timezone, user.may(*DUTY))


@router.get("/roster", response_class=HTMLResponse)
async def roster(request: Request, user: auth.Viewer, week: str | None = None) -> HTMLResponse:
    try:
        data = await _data(_week(request, week), user)
    except svc.RosterError as exc:
        return render(request, "message.html", status=exc.status, kind="error", message=str(exc))
    return render(request, "roster.html", r=data, now=datetime.now(UTC))


@router.get("/roster.pdf", response_model=None)
async def roster_pdf(request: Request, user: auth.Viewer, week: str | None = None) -> Response | HTMLResponse:
    try:
        data = await _data(_week(request, week), user)
    except svc.RosterError as exc:
        return render(request, "message.html", status=exc.status, kind="error", message=str(exc))
    lang = lang_of(request.query_params.get("lang"), request.cookies.get(LANG_COOKIE))
    html = templates.get_template("roster_print.html").render(
        r=data, t=translator(lang), lang=lang, now=datetime.now(UTC), font_stack=FONT_STACK, tz=get_settings().timezone)
    pdf = await asyncio.to_thread(render_pdf, html)
    return Response(pdf, media_type="application/pdf", headers={
        "Content-Disposition": f'attachment; filename="roster-{data["week"]}.pdf"', "Cache-Control": "no-store"})
