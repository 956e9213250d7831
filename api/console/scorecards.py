"""考核 scorecards in the console: every town's and department's figures over a period (store/scorecards.py), each
figure a link to the records it came from (one unit's page lists them, each opening its replay).

The same service as `GET /api/scorecards` (api/services/scorecards.py); supervisors and the duty office read it."""
from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from api.console import roles
from api.console.i18n_scorecards import SCORECARD_STRINGS
from api.console.pages import db, render
from api.services import scorecards as svc
from api.services.errors import ServiceError
from config import get_settings

assert "scorecards" in SCORECARD_STRINGS  # imported for its strings (added to the console's table on import)

router = APIRouter(prefix="/console/scorecards", tags=["console"], include_in_schema=False)


def _period(date_from: str, date_to: str) -> tuple[str, str]:
    """The dates asked for, else the last 30 days of the duty office's calendar."""
    if not date_from and not date_to:
        today = datetime.now(ZoneInfo(get_settings().timezone)).date()
        return (today - timedelta(days=30)).isoformat(), today.isoformat()
    return date_from[:10], date_to[:10]


@router.get("", response_class=HTMLResponse)
async def scorecard_list(request: Request, user: roles.LogReader, date_from: str = "", date_to: str = "",
                         kind: str = "") -> HTMLResponse:
    date_from, date_to = _period(date_from, date_to)
    try:
        data, error = await db(svc.listing, date_from, date_to, kind or None), None
    except ServiceError as exc:
        data, error = {"units": []}, str(exc)
    return render(request, "scorecards.html", status=422 if error else 200, error=error, units=data["units"],
                  unit=None, events=[], date_from=date_from, date_to=date_to, kind=kind)


@router.get("/{unit_id}", response_class=HTMLResponse)
async def scorecard_page(request: Request, unit_id: str, user: roles.LogReader, date_from: str = "",
                         date_to: str = "") -> HTMLResponse:
    date_from, date_to = _period(date_from, date_to)
    try:
        data, error, status = await db(svc.one, unit_id, date_from, date_to), None, 200
    except ServiceError as exc:
        data, error, status = {"unit": None, "events": []}, str(exc), exc.status
    units = [data["unit"]] if data["unit"] else []
    return render(request, "scorecards.html", status=status, error=error, units=units, unit=data["unit"],
                  events=data["events"], date_from=date_from, date_to=date_to, kind="")
