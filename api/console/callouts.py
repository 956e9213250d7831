"""A new call-out from the console: the form (a CAP document or a few fields), the preview of whom
it would call, and the start, which goes through the same intake as a warning from a feed."""
from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from api.cap import CapError
from api.console import auth, roles
from api.console.i18n import LEVEL_NAMES
from api.console.pages import db, form_error, library, render
from api.services import directory, preview as whom
from api.services.warnings import IntakeError, Normalised, WarningIn, from_cap, from_json, intake
from config import get_settings

router = APIRouter(prefix="/console", tags=["console"], include_in_schema=False)


def _warning_from_form(cap: str, identifier: str, event: str, level: str, headline: str, towns: list[str],
                       town_names: dict[str, str], drill: bool, user: auth.ConsoleUser) -> Normalised:
    if cap.strip():
        return from_cap(cap.strip().encode())
    data = WarningIn(identifier=identifier or f"console-{uuid.uuid4().hex}", sender=f"console:{user.label}",
                     level=level or None, event=event, headline=headline or f"{event}{LEVEL_NAMES.get(level, ('', ''))[0]}预警",
                     areas=towns, area_descs=[town_names.get(t, t) for t in towns], drill=drill)
    return from_json(data)


@router.get("/callouts/new", response_class=HTMLResponse)
async def new_callout(request: Request, user: roles.DutyUser) -> HTMLResponse:
    lib = await asyncio.to_thread(library)
    towns = await db(directory.towns)
    events = sorted({kw for loaded in lib.of("callout").values() for kw in loaded.model.events if not kw.isascii()})
    return render(request, "new_callout.html", towns=towns, events=events, identifier=f"console-{uuid.uuid4().hex}")


class _Form:
    """The new call-out form's fields (the same for preview and start)."""

    def __init__(self, cap: str = "", identifier: str = "", event: str = "", level: str = "", headline: str = "",
                 towns: list[str] | None = None, drill: bool = False) -> None:
        self.cap, self.identifier, self.event, self.level = cap, identifier, event, level
        self.headline, self.towns, self.drill = headline, towns or [], drill


async def _read_form(request: Request) -> _Form:
    form = await request.form()
    cap = str(form.get("cap") or "")
    if len(cap.encode()) > 512_000:
        raise HTTPException(413, detail="CAP document larger than 512 kB")
    return _Form(cap=cap, identifier=str(form.get("identifier") or ""), event=str(form.get("event") or "")[:200],
                 level=str(form.get("level") or ""), headline=str(form.get("headline") or "")[:500],
                 towns=[str(t) for t in form.getlist("towns")][:500], drill=form.get("drill") == "on")


async def _normalised(f: _Form, user: auth.ConsoleUser) -> Normalised:
    town_names = {u.id: u.name for u in await db(directory.towns)}
    return _warning_from_form(f.cap, f.identifier, f.event, f.level, f.headline, f.towns, town_names, f.drill, user)


@router.post("/callouts/preview", response_class=HTMLResponse)
async def preview(request: Request, user: roles.DutyUser) -> HTMLResponse:
    f = await _read_form(request)
    try:
        w = await _normalised(f, user)
    except (CapError, IntakeError, ValidationError) as exc:
        return render(request, "_preview.html", error=form_error(exc))
    lib = await asyncio.to_thread(library)
    data = await db(whom.preview, lib, w, datetime.now(UTC))
    return render(request, "_preview.html", **data)


@router.post("/callouts/start")
async def start(request: Request, user: roles.DutyUser) -> Response:
    f = await _read_form(request)
    settings = get_settings()
    try:
        w = await _normalised(f, user)
        lib = await asyncio.to_thread(library)
        client = await request.app.state.temporal()
        result = await intake(client, settings, lib, w, source="console", actor=user.caller.actor)
    except (CapError, IntakeError, ValidationError) as exc:
        return render(request, "_preview.html", error=form_error(exc))
    target = f"/console/callouts/{result.callout_id}" if result.callout_id else "/console/desk"
    if request.headers.get("hx-request"):
        return Response(status_code=204, headers={"HX-Redirect": target})
    return RedirectResponse(target, status_code=303)
