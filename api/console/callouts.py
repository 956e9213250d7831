"""A new call-out from the console: two modes, a pasted CAP document or a few fields of a form (the
`mode` field says which; the other is ignored), the preview of whom it would call (or, for a CAP
Update or Cancel, what it changes or ends), and the start/apply, which goes through the same intake
as a warning from a feed. An old or expired warning starts only with `confirm_stale` ticked."""
from __future__ import annotations

import asyncio
import hashlib
import uuid
from datetime import UTC, datetime

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from api.cap import CapError
from api.console import auth, roles
from api.console.i18n import COOKIE as LANG_COOKIE, LEVEL_NAMES, lang_of, translator
from api.console.pages import db, form_error, library, render
from api.services import directory, preview as whom
from api.services.staleness import age_words, freshness
from api.services.warnings import IntakeError, Normalised, WarningIn, from_cap, from_json, intake
from config import get_settings

router = APIRouter(prefix="/console", tags=["console"], include_in_schema=False)


def _warning_from_form(mode: str, cap: str, identifier: str, event: str, level: str, headline: str, towns: list[str],
                       town_names: dict[str, str], drill: bool, user: auth.ConsoleUser) -> Normalised:
    if mode == "cap":
        if not cap.strip():
            raise IntakeError(422, "请粘贴 CAP 文档,或改选“填写表单” / paste a CAP document or choose the form")
        return from_cap(cap.strip().encode())
    data = WarningIn(identifier=identifier or f"console-{uuid.uuid4().hex}", sender=f"console:{user.label}",
                     level=level or None, event=event, headline=headline or f"{event}{LEVEL_NAMES.get(level, ('', ''))[0]}预警",
                     areas=towns, area_descs=[town_names.get(t, t) for t in towns], drill=drill,
                     sent=datetime.now(UTC))  # issued from the console now
    return from_json(data)


@router.get("/callouts/new", response_class=HTMLResponse)
async def new_callout(request: Request, user: roles.DutyUser) -> HTMLResponse:
    lib = await asyncio.to_thread(library)
    towns = await db(directory.towns)
    events = sorted({kw for loaded in lib.of("callout").values() for kw in loaded.model.events if not kw.isascii()})
    return render(request, "new_callout.html", towns=towns, events=events, identifier=f"console-{uuid.uuid4().hex}")


class _Form:
    """The new call-out form's fields (the same for preview and start)."""

    def __init__(self, mode: str = "form", cap: str = "", identifier: str = "", event: str = "", level: str = "",
                 headline: str = "", towns: list[str] | None = None, drill: bool = False,
                 confirm_stale: bool = False, previewed: str = "") -> None:
        self.mode, self.cap, self.identifier, self.event, self.level = mode, cap, identifier, event, level
        self.headline, self.towns, self.drill, self.confirm_stale = headline, towns or [], drill, confirm_stale
        self.previewed = previewed  # the key of what the preview showed (empty: no preview, e.g. without JS)

    @property
    def key(self) -> str:
        """What this form would start, in one value: the mode and only the chosen mode's fields."""
        parts = [self.mode, self.cap.strip()] if self.mode == "cap" else [
            self.mode, self.event, self.level, self.headline, ",".join(sorted(self.towns)), str(self.drill)]
        return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:16]


async def _read_form(request: Request) -> _Form:
    form = await request.form()
    cap = str(form.get("cap") or "")
    if len(cap.encode()) > 512_000:
        raise HTTPException(413, detail="CAP document larger than 512 kB")
    mode = str(form.get("mode") or ("cap" if cap.strip() else "form"))  # a form without the field: as it is filled
    if mode not in ("form", "cap"):
        raise HTTPException(422, detail="mode: 只能是 form(填写表单)或 cap(粘贴 CAP)")
    return _Form(mode=mode, cap=cap, identifier=str(form.get("identifier") or ""),
                 event=str(form.get("event") or "")[:200], level=str(form.get("level") or ""),
                 headline=str(form.get("headline") or "")[:500], towns=[str(t) for t in form.getlist("towns")][:500],
                 drill=form.get("drill") == "on", confirm_stale=form.get("confirm_stale") == "on",
                 previewed=str(form.get("previewed") or ""))


async def _normalised(f: _Form, user: auth.ConsoleUser) -> Normalised:
    town_names = {u.id: u.name for u in await db(directory.towns)}
    return _warning_from_form(f.mode, f.cap, f.identifier, f.event, f.level, f.headline, f.towns, town_names, f.drill, user)


def _lang(request: Request) -> str:
    return lang_of(request.query_params.get("lang"), request.cookies.get(LANG_COOKIE))


def _freshness(w: Normalised, lang: str) -> dict:
    settings = get_settings()
    fresh = freshness(w.sent, w.expires, datetime.now(UTC), settings.stale_warning_hours)
    return {"fresh": fresh, "age_text": age_words(fresh.age_s, lang), "stale_hours": f"{settings.stale_warning_hours:g}",
            "needs_confirm": w.msg_type != "Cancel" and fresh.stale}


async def _preview_page(request: Request, f: _Form, w: Normalised, refusal: str | None = None) -> HTMLResponse:
    lib = await asyncio.to_thread(library)
    data = await db(whom.preview, lib, w, datetime.now(UTC))
    return render(request, "_preview.html", mode=f.mode, refusal=refusal, confirmed=f.confirm_stale, key=f.key,
                  **_freshness(w, _lang(request)), **data)


@router.post("/callouts/preview", response_class=HTMLResponse)
async def preview(request: Request, user: roles.DutyUser) -> HTMLResponse:
    f = await _read_form(request)
    try:
        w = await _normalised(f, user)
    except (CapError, IntakeError, ValidationError) as exc:
        return render(request, "_preview.html", mode=f.mode, error=form_error(exc))
    return await _preview_page(request, f, w)


@router.post("/callouts/start")
async def start(request: Request, user: roles.DutyUser) -> Response:
    """Start a call-out, or apply a CAP Update/Cancel to the running one; an old or expired warning only
    with `confirm_stale` (refused with the preview again otherwise: nothing is called)."""
    f = await _read_form(request)
    settings = get_settings()
    try:
        w = await _normalised(f, user)
        if f.previewed and f.previewed != f.key:  # the mode switched or the text changed since the preview
            resp = await _preview_page(request, f, w, refusal=translator(_lang(request))("co_changed"))
            resp.status_code = 200 if request.headers.get("hx-request") else 409
            return resp
        if w.msg_type != "Cancel" and not f.confirm_stale:
            fresh = freshness(w.sent, w.expires, datetime.now(UTC), settings.stale_warning_hours)
            if fresh.stale:
                lang = _lang(request)
                t = translator(lang)
                why = t("co_expired") if fresh.expired else t("co_old").format(h=f"{settings.stale_warning_hours:g}")
                resp = await _preview_page(request, f, w, refusal=t("co_stale_refused").format(
                    why=why, age=age_words(fresh.age_s, lang)))
                resp.status_code = 200 if request.headers.get("hx-request") else 409
                return resp
        lib = await asyncio.to_thread(library)
        client = await request.app.state.temporal()
        result = await intake(client, settings, lib, w, source="console", actor=user.caller.actor,
                              accept_stale=f.confirm_stale)
    except (CapError, IntakeError, ValidationError) as exc:
        return render(request, "_preview.html", mode=f.mode, error=form_error(exc))
    target = (f"/console/callouts/{result.callout_id}" if result.callout_id else
              f"/console/publications/{result.publication_id}" if result.publication_id else "/console/desk")
    if request.headers.get("hx-request"):
        return Response(status_code=204, headers={"HX-Redirect": target})
    return RedirectResponse(target, status_code=303)
