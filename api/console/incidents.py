"""Console pages of the incident reporting chain 信息报送: the list with a 接报 form, and one page per
incident with its deadlines (live countdowns) and a form for each step the chain is waiting for.

Every step goes through `api.services.incidents` like the REST API: the workflow's validators
decide who may do what and in which order, and their reason is shown as it is.
"""
from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from api.console import auth, roles
from api.console.pages import db, form_error, library, render, temporal_url
from api.deps import DUTY, get_temporal
from api.services import directory
from api.services import incidents as svc
from api.services.answers import AnswerError, acknowledge
from api.services.dates import local_range
from api.services.errors import ServiceError
from config import get_settings
from definitions.schema.reporting import CATEGORIES, CATEGORY_ZH
from workflows.reporting import Draft, DraftIn, ReviewIn, SubmitIn, VerbalIn
from workflows.reporting.rules import ROLE_OF

router = APIRouter(prefix="/console/incidents", tags=["console"], include_in_schema=False)
SOURCES = {"110": ("110", "110"), "119": ("119", "119"), "120": ("120", "120"), "12345": ("12345", "12345"),
           "department": ("部门报告", "department"), "town": ("乡镇(街道)报告", "town"), "field": ("现场报告", "field"),
           "media": ("媒体", "media"), "warning": ("预警", "warning")}
CATEGORY_EN = {"natural_disaster": "natural disaster", "accident": "accident", "public_health": "public health",
               "social_security": "social security"}
STEPS = ("verbal", "draft", "review", "submit", "followup", "final")


def _int(form: Any, name: str) -> int:
    value = str(form.get(name) or "0").strip()
    return int(value) if value.isdigit() else -1  # -1: refused by the model with its own message


def _casualties(form: Any) -> dict[str, int]:
    return {k: _int(form, k) for k in ("deaths", "injured", "missing", "trapped")}


FIGURE_INTS = ("affected_population", "relocated", "houses_collapsed", "houses_damaged")
FIGURE_FLOATS = ("crop_area_ha", "direct_loss_wan")


def _number(form: Any, name: str) -> float:
    value = str(form.get(name) or "0").strip()
    try:
        return float(value)
    except ValueError:
        return -1  # refused by the model with its own message


def _figures(form: Any) -> dict[str, Any] | None:
    """灾情统计 from the draft form; none when every field is left empty."""
    if not any(str(form.get(k) or "").strip() for k in (*FIGURE_INTS, *FIGURE_FLOATS)):
        return None
    return {**{k: _int(form, k) for k in FIGURE_INTS}, **{k: _number(form, k) for k in FIGURE_FLOATS},
            "correction": _blank_none(form.get("fig_correction"))}


def _blank_none(value: Any) -> str | None:
    value = str(value or "").strip()
    return value or None


async def _page(request: Request, incident_id: str, status: int = 200, error: str | None = None,
                done: str | None = None) -> HTMLResponse:
    data = await asyncio.to_thread(svc.incident_detail, incident_id)
    if data is None:
        return render(request, "message.html", status=404, kind="error", message=f"no incident {incident_id!r} / 无此事件")
    current = data["reports"][-1] if data["reports"] else None
    phones = await db(directory.mobiles, {x["recipient_id"] for r in data["reports"] for x in r["receipts"]})
    rules = (await asyncio.to_thread(library)).reporting_rules(data.get("rules_id"))
    # who may do each step (the forms of the others are shown disabled, with who may: forms.js)
    step_roles = {a: list(getattr(rules.model.roles, ROLE_OF[a])) for a in ROLE_OF} if rules is not None else {}
    latest = current["versions"][-1] if current and current["versions"] else None
    return render(request, "incident.html", status=status, inc=data, current=current, latest=latest, error=error,
                  done=done, phones=phones, step_roles=step_roles, categories={c: (CATEGORY_ZH[c], CATEGORY_EN[c]) for c in CATEGORIES},
                  temporal_url=temporal_url(get_settings(), data["workflow_id"]), now=datetime.now(UTC))


@router.get("", response_class=HTMLResponse)
async def incident_list(request: Request, user: auth.Viewer, status: str | None = None, date_from: str = "",
                        date_to: str = "") -> HTMLResponse:
    status = status if status in ("open", "closed") else None
    date_from, date_to, error = date_from[:10], date_to[:10], None
    try:
        dates = local_range(date_from, date_to)
    except ServiceError as exc:
        dates, error = None, str(exc)
    rows = await asyncio.to_thread(svc.incident_list, 200, status, None, dates=dates) if dates else []
    return render(request, "incidents.html", status=422 if error else 200, error=error, incidents=rows,
                  status_filter=status, date_from=date_from, date_to=date_to, towns=await db(directory.towns),
                  callouts=await db(svc.recent_callouts),
                  sources=SOURCES, categories={c: (CATEGORY_ZH[c], CATEGORY_EN[c]) for c in CATEGORIES},
                  now=datetime.now(UTC))


@router.post("")
async def receive(request: Request, user: roles.DutyUser) -> Response:
    """接报: start an incident's reporting chain from the form."""
    form = await request.form()
    try:
        data = svc.IncidentIn(source=form.get("source") or "", category=form.get("category") or "",
                              subtype=str(form.get("subtype") or ""), town_id=_blank_none(form.get("town_id")),
                              place=str(form.get("place") or ""), title=_blank_none(form.get("title")),
                              summary=str(form.get("summary") or ""), casualties=_casualties(form),
                              reporting_unit=str(form.get("reporting_unit") or ""), reporter=str(form.get("reporter") or ""),
                              reporter_phone=_blank_none(form.get("reporter_phone")),
                              related=[r for r in form.getlist("related") if r], **_times(form))
        settings = get_settings()
        view, _ = await svc.start(await get_temporal(request), settings, await asyncio.to_thread(library), data,
                                  user.caller.actor)
    except ValidationError as exc:
        return await _list_error(request, form_error(exc))
    except svc.IncidentError as exc:
        return await _list_error(request, str(exc), exc.status)
    return RedirectResponse(f"/console/incidents/{view.incident_id}", status_code=303)


async def _list_error(request: Request, message: str, status: int = 422) -> HTMLResponse:
    rows = await asyncio.to_thread(svc.incident_list, 200, None, None)
    return render(request, "incidents.html", status=status, incidents=rows, status_filter=None, error=message,
                  towns=await db(directory.towns), sources=SOURCES, callouts=await db(svc.recent_callouts),
                  categories={c: (CATEGORY_ZH[c], CATEGORY_EN[c]) for c in CATEGORIES}, now=datetime.now(UTC))


@router.get("/{incident_id}", response_class=HTMLResponse)
async def incident_page(request: Request, incident_id: str, user: auth.Viewer) -> HTMLResponse:
    return await _page(request, incident_id)


def _draft(form: Any) -> Draft:
    occurred = _blank_none(form.get("occurred_at"))
    return Draft(occurred_at=_local_time(occurred) if occurred else None, place=str(form.get("place") or ""),
                 what_happened=str(form.get("what_happened") or ""), casualties=_casualties(form), figures=_figures(form),
                 measures=str(form.get("measures") or ""), trend=str(form.get("trend") or ""),
                 next_steps=str(form.get("next_steps") or ""), cause=_blank_none(form.get("cause")))


def _times(form: Any) -> dict[str, datetime]:
    """事发时间, 知悉时间, the unit's report time from the intake form (local times); a malformed one: IncidentError."""
    out = {}
    for name in ("occurred_at", "known_at", "reported_at"):
        value = _blank_none(form.get(name))
        if value:
            try:
                out[name] = _local_time(value)
            except ValueError:
                raise svc.IncidentError(422, f"{name}: not a date and time ({value[:40]!r})") from None
    return out


def _local_time(value: str) -> datetime:
    """A datetime-local field (no zone) is the duty office's local time."""
    from zoneinfo import ZoneInfo

    at = datetime.fromisoformat(value)
    return at if at.tzinfo else at.replace(tzinfo=ZoneInfo(get_settings().timezone))


@router.post("/{incident_id}/{action}", response_class=HTMLResponse)
async def step(request: Request, incident_id: str, action: str,
               user: Annotated[auth.ConsoleUser, Depends(roles.acting_on(STEPS, DUTY, "unknown step"))]) -> Response:
    form = await request.form()
    who = {"actor": user.caller.actor, "role": user.role}
    try:
        if action == "verbal":
            at = _blank_none(form.get("at"))
            req: Any = VerbalIn(**who, to_whom=str(form.get("to_whom") or ""), by_whom=str(form.get("by_whom") or ""),
                                at=_local_time(at) if at else None, channel=str(form.get("channel") or "phone"),
                                note=_blank_none(form.get("note")))
        elif action == "review":
            version = str(form.get("version") or "")
            req = ReviewIn(**who, decision=form.get("decision") or "", comments=str(form.get("comments") or ""),
                           version=int(version) if version.isdigit() else None)
        elif action == "submit":
            req = SubmitIn(**who)
        else:
            req = DraftIn(**who, draft=_draft(form))
        await svc.step(await get_temporal(request), incident_id, action, req)
    except ValidationError as exc:
        return await _page(request, incident_id, status=422, error=form_error(exc))
    except svc.IncidentError as exc:  # before ValueError: it is one
        return await _page(request, incident_id, status=exc.status, error=str(exc))
    except ValueError as exc:  # a malformed time
        return await _page(request, incident_id, status=422, error=f"time: {exc}")
    return RedirectResponse(f"/console/incidents/{incident_id}?done={action}", status_code=303)


@router.post("/{incident_id}/receipts/{person_id}", response_class=HTMLResponse)
async def receipt_on_behalf(request: Request, incident_id: str, person_id: str, user: roles.DutyUser) -> Response:
    """A recipient confirmed by phone: the duty officer records it with a note."""
    note = str((await request.form()).get("note") or "").strip()
    if not note or len(note) > 1000:
        return await _page(request, incident_id, status=422, error="说明必填(1–1000字)/ a note of 1–1000 characters is required")
    now = datetime.now(UTC)
    actor = user.caller.actor
    try:
        await acknowledge(await get_temporal(request), incident_id, person_id, "proxy", actor=actor, note=note,
                          ref=f"proxy:{actor}:{person_id}:{now.timestamp()}", at=now)
    except AnswerError as exc:
        return await _page(request, incident_id, status=404, error=str(exc))
    return RedirectResponse(f"/console/incidents/{incident_id}?done=receipt", status_code=303)
