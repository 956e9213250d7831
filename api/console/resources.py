"""Console pages of the resource register 应急资源: one list per section (teams, equipment, depots with their stock,
experts, shelters) filtered by town and kind, and the stock alerts (below the minimum, past expiry). Every role
reads them, as the directory; the duty office edits through `/api/resources/...` (api/services/resources.py)."""
from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from api.console import auth
from api.console.i18n_resources import RESOURCE_STRINGS
from api.console.pages import db, render, schedules_of
from api.console.roles import CHIEFS
from api.services import readiness as readiness_svc
from api.services import resources as svc
from api.services.duty.common import DutyError
from api.services.directory import towns
from api.services.errors import ServiceError
from config import get_settings
from store.resources import SECTIONS

assert "resources" in RESOURCE_STRINGS  # imported for its strings (added to the console's table on import)

router = APIRouter(prefix="/console/resources", tags=["console"], include_in_schema=False)
KIND_KEY = {"teams": "rk_", "equipment": "ek_", "experts": "xf_", "shelters": "res_"}  # a kind's label: prefix + code


def _page(s, section: str, town: str, kind: str) -> dict:
    tz = get_settings().timezone
    rows = svc.record_list(s, section, tz, town=town or None, kind=kind or None, limit=2000)
    return {"rows": rows, "towns": [(t.id, t.name) for t in towns(s)]}


@router.get("/alerts", response_class=HTMLResponse)
async def alerts(request: Request, user: auth.Viewer, town: str = "") -> HTMLResponse:
    tz = get_settings().timezone
    data = await db(lambda s: {**svc.alerts(s, tz, town or None), "towns": [(t.id, t.name) for t in towns(s)]})
    return render(request, "resources.html", section="alerts", sections=SECTIONS, rows=[], alerts=data["alerts"],
                  today=data["today"], towns=data["towns"], town=town, kind="", kinds=[], kind_key="", error=None)


@router.get("/stale", response_class=HTMLResponse)
async def stale(request: Request, user: auth.Viewer) -> HTMLResponse:
    """待核实: records their owner has not confirmed within a year (the yearly contact round), or with no owner."""
    data = await db(lambda s: {**svc.stale(s), "towns": [(t.id, t.name) for t in towns(s)]})
    return render(request, "resources.html", section="stale", sections=SECTIONS, rows=[], alerts=[], today=None,
                  stale=data, towns=data["towns"], town="", kind="", kinds=[], kind_key="", error=None)


@router.get("/readiness", response_class=HTMLResponse)
async def readiness(request: Request, user: auth.Viewer, run: str = "") -> HTMLResponse:
    """每月调度: the readiness checks, newest first, and one check's answers per team (the newest by default)."""
    def page(s) -> dict:
        runs = readiness_svc.runs(s)
        chosen = run or (runs[0]["id"] if runs else "")
        return {"runs": runs, "detail": readiness_svc.run(s, chosen) if chosen else None}

    try:
        data, error, status = await db(page), None, 200
    except DutyError as exc:  # an unknown run
        data, error, status = {"runs": await db(readiness_svc.runs), "detail": None}, str(exc), exc.status
    schedules, sched_error = await schedules_of(request, "readiness")  # 每月调度's schedule: pause, run now
    return render(request, "readiness.html", status=status, section="readiness", sections=SECTIONS,
                  runs=data["runs"], detail=data["detail"], error=error, schedules=schedules, sched_error=sched_error,
                  may_control=user.may(*CHIEFS), is_admin=user.role == "admin")


@router.get("", response_class=HTMLResponse)
async def register(request: Request, user: auth.Viewer, section: str = "teams", town: str = "",
                   kind: str = "") -> HTMLResponse:
    section = section if section in SECTIONS else "teams"
    try:
        data, error, status = await db(_page, section, town, kind), None, 200
    except ServiceError as exc:  # a kind not in the list
        data, error, status = await db(_page, section, town, ""), str(exc), exc.status
    return render(request, "resources.html", status=status, section=section, sections=SECTIONS, rows=data["rows"],
                  alerts=[], today=None, towns=data["towns"], town=town, kind=kind, kinds=svc.KINDS.get(section, ()),
                  kind_key=KIND_KEY.get(section, ""), error=error)
