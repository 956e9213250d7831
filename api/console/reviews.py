"""Console pages of the post-event review 复盘: the list (with a form to start one by hand), and the page of one
review: every participating unit with its summary's time limit (a countdown), late marks and escalation, the
summaries themselves, a form for the duty office to record a unit's summary (what worked, shortcomings,
suggestions), compiling the event report, the leading leader's sign-off or return with the lessons, the report
as HTML/PDF/JSON per version, the sealed case file with its hash, and links to the replay and Temporal UI.

Every action goes through `api.services.reviews` like the REST API: the workflow's validators decide who may
act and in which order, and their reason is shown as it is. The report and the case file are served here too,
behind the console session (the REST routes want a bearer token).
"""
from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from api.console import auth, roles
from api.console.pages import db, form_error, library, render, temporal_url
from api.deps import get_temporal
from api.services import reviews as svc
from api.services.dates import local_range
from api.services.errors import ServiceError
from api.services.incidents import incident_list
from config import get_settings
from workflows.review import CompileIn, SignoffIn, SummaryContent, SummaryIn, late_text

router = APIRouter(prefix="/console/reviews", tags=["console"], include_in_schema=False)
STATUSES = ("collecting", "compiled", "returned", "signed", "sealed")


def _text(form: Any, name: str) -> str:
    return str(form.get(name) or "").strip()


async def _page(request: Request, incident_id: str, status: int = 200, error: str | None = None,
                form: dict | None = None) -> HTMLResponse:
    review = await asyncio.to_thread(svc.detail, incident_id)
    if review is None:
        return render(request, "message.html", status=404, kind="error",
                      message=f"no review of incident {incident_id!r} / 无此复盘")
    extra = await db(svc.page_data, incident_id)
    lib = await asyncio.to_thread(library)
    loaded = lib.review_template(review["template_id"] or None)
    roles = loaded.model.roles if loaded else None
    now = datetime.now(UTC)
    for u in review["units"]:
        u["late_text"] = late_text(u["late_by_s"]) if u["late_by_s"] else None
        u["open"] = u["submitted_at"] is None and review["status"] not in ("signed", "sealed")
    activation = review["activation_id"]
    return render(request, "review.html", status=status, r=review, error=error, form=form or {}, now=now,
                  roles=roles, temporal_url=temporal_url(get_settings(), review["workflow_id"]),
                  activation=activation, **extra)


@router.get("", response_class=HTMLResponse)
async def review_list(request: Request, user: auth.Viewer, status: str | None = None) -> HTMLResponse:
    return await _listing(request, status=status if status in STATUSES else None)


async def _listing(request: Request, code: int = 200, error: str | None = None, status: str | None = None) -> HTMLResponse:
    date_from, date_to = (str(request.query_params.get(k) or "")[:10] for k in ("date_from", "date_to"))
    try:
        dates = local_range(date_from, date_to)
    except ServiceError as exc:
        dates, code, error = None, exc.status, error or str(exc)
    rows = await asyncio.to_thread(svc.listing, 200, status, dates=dates) if dates else []
    progress = {r["incident_id"]: r for r in await db(svc.open_reviews, datetime.now(UTC), 200)}
    incidents = await asyncio.to_thread(incident_list, 100, None, None)
    started = {r["incident_id"] for r in rows}
    return render(request, "reviews.html", status=code, reviews=rows, progress=progress, error=error,
                  incidents=[i for i in incidents if i["id"] not in started], statuses=STATUSES,
                  status_filter=status or "", date_from=date_from, date_to=date_to, now=datetime.now(UTC))


@router.post("")
async def start(request: Request, user: roles.DutyUser) -> Response:
    form = await request.form()
    try:
        units = [u.strip() for u in _text(form, "units").replace("、", ",").split(",") if u.strip()]
        data = svc.ReviewStart(incident_id=_text(form, "incident_id"), units=units)
        settings = get_settings()
        view, _ = await svc.start(await get_temporal(request), settings, await asyncio.to_thread(library), data,
                                  user.caller.actor)
    except ValidationError as exc:
        return await _listing(request, 422, form_error(exc))
    except svc.ReviewError as exc:
        return await _listing(request, exc.status, str(exc))
    return RedirectResponse(f"/console/reviews/{view.incident_id}", status_code=303)


@router.get("/{incident_id}", response_class=HTMLResponse)
async def review_page(request: Request, incident_id: str, user: auth.Viewer) -> HTMLResponse:
    return await _page(request, incident_id)


@router.get("/{incident_id}/report.{fmt}")
async def report(request: Request, incident_id: str, fmt: str, user: auth.Viewer, version: int | None = None) -> Response:
    if fmt not in svc.MEDIA:
        return render(request, "message.html", status=404, kind="error", message=f"no report format {fmt!r}")
    try:
        body, media, row = await asyncio.to_thread(svc.report, incident_id, version, fmt)
    except svc.ReviewError as exc:
        return render(request, "message.html", status=exc.status, kind="error", message=str(exc))
    headers = {"X-Report-Version": str(row.version), "X-Report-Final": str(row.final).lower()}
    if fmt == "pdf":
        headers["Content-Disposition"] = f'inline; filename="event-report-{incident_id}-v{row.version}.pdf"'
    return Response(content=body, media_type=media, headers=headers)


@router.get("/{incident_id}/casefile")
async def casefile(request: Request, incident_id: str, user: roles.Supervisor) -> Response:
    """Supervisors only: the case file holds the audit trail (who may read /api/audit)."""
    row = await asyncio.to_thread(svc.case_file, incident_id)
    if row is None:
        return render(request, "message.html", status=404, kind="error",
                      message=f"no sealed case file for incident {incident_id!r} / 案卷尚未封存")
    return Response(content=row.data, media_type="application/zip", headers={
        "Content-Disposition": f'attachment; filename="{row.filename}"', "X-SHA256": row.sha256})


ACTIONS = ("summary", "compile", "signoff")


@router.post("/{incident_id}/{action}", response_class=HTMLResponse)
async def act(request: Request, incident_id: str, action: str, user: auth.Poster) -> Response:
    if action not in ACTIONS:
        return render(request, "message.html", status=404, kind="error", message=f"unknown action {action!r}")
    form = await request.form()
    who = {"actor": user.caller.actor, "role": user.role}
    kept = {k: _text(form, k) for k in ("unit_id", "what_worked", "shortcomings", "suggestions", "author",
                                        "lessons", "comments")}
    try:
        if action == "summary":
            req: Any = SummaryIn(**who, unit_id=kept["unit_id"], summary=SummaryContent(
                what_worked=kept["what_worked"], shortcomings=kept["shortcomings"], suggestions=kept["suggestions"],
                author=kept["author"]))
        elif action == "compile":
            req = CompileIn(**who)
        else:
            version = _text(form, "version")
            req = SignoffIn(**who, decision=_text(form, "decision"), version=int(version) if version.isdigit() else None,
                            lessons=kept["lessons"], comments=kept["comments"])
        await svc.step(await get_temporal(request), incident_id, action, req)
    except ValidationError as exc:
        return await _page(request, incident_id, 422, form_error(exc), kept)
    except svc.ReviewError as exc:
        return await _page(request, incident_id, exc.status, str(exc), kept)
    return RedirectResponse(f"/console/reviews/{incident_id}?done={action}", status_code=303)
