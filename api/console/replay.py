"""The supervisors' replay: a subject's audit trail (filtered by kind and actor, its chain checked),
the state it had at any instant (a slider), links to its procedure's page, the Temporal UI and the
sealed case file that holds it."""
from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from api.console import roles
from api.console.pages import db, library, render, temporal_url
from api.services import desk, names, timeline
from api.services.replay import replay_subject
from api.services.reviews import sealed_case_of
from config import get_settings
from store.replay import jsonable
from store.replay.labels import tier_name

router = APIRouter(prefix="/console", tags=["console"], include_in_schema=False)


@router.get("/replay", response_class=HTMLResponse)
async def replay_index(request: Request, user: roles.Supervisor, subject: str | None = None) -> Response:
    if subject:
        return RedirectResponse(f"/console/replay/{quote(subject.strip(), safe='/')}", status_code=303)
    lib = await asyncio.to_thread(library)
    data = await db(desk.desk, lib, datetime.now(UTC))
    others = await db(timeline.replay_subjects)
    return render(request, "replay_index.html", callouts=data["running"] + data["ended"] + data["drills"], **others)


# `{subject:path}`: activations and reviews have subjects with a slash (activation/<id>, review/<id>); the
# state route comes first, or the page route would take ".../state" for a subject.
@router.get("/replay/{subject:path}/state", response_class=HTMLResponse)
async def replay_state(request: Request, subject: str, user: roles.Supervisor,
                       t: Annotated[int | None, Query(ge=0, le=10**9)] = None,
                       at: datetime | None = None) -> HTMLResponse:
    """The state at an instant: `t` seconds after the first event (the slider), or an exact `at`."""
    tl = await db(timeline.timeline, subject, None, None, limit=1)
    if tl["count"] == 0:
        return render(request, "message.html", status=404, kind="error", message=f"no audit events of {subject!r}")
    if at is None:
        at = tl["first"] + timedelta(seconds=t) if t is not None else tl["last"]
    at = at if at.tzinfo else at.replace(tzinfo=UTC)
    if t is None and at >= tl["first"]:
        t = int((at - tl["first"]).total_seconds())
    state = await db(replay_subject, subject, at, get_settings().definitions_dir)
    lib = await asyncio.to_thread(library)
    loaded = lib.of("callout").get(((state or {}).get("plan") or {}).get("id") or "") \
        if (state or {}).get("kind") == "callout" else None
    tier_names = {tr.id: (tr.name_zh, tr.name_en) for tr in loaded.model.tiers} if loaded else {}
    if state and state.get("kind") in ("activation", "review", "reporting"):
        items = {it["id"]: it.get("label") or it["id"] for it in state.get("tasks", []) + state.get("directives", [])}
        tier_names = {tier: (tier_name(state["kind"], tier, items),) * 2 for tier in state.get("per_tier", {})}
    return render(request, "_replay_state.html", subject=subject, at=at, seconds=t, tier_names=tier_names,
                  state=jsonable(state) if state else None, limit=300)


@router.get("/replay/{subject:path}", response_class=HTMLResponse)
async def replay_page(request: Request, subject: str, user: roles.Supervisor, kind: str | None = None,
                      actor: str | None = None) -> HTMLResponse:
    tl = await db(timeline.timeline, subject, kind or None, actor or None)
    check = await db(timeline.verify, subject)
    if tl["count"] == 0:
        return render(request, "message.html", status=404, kind="error", message=f"no audit events of {subject!r}")
    span = max(int((tl["last"] - tl["first"]).total_seconds()) + 1, 1)
    settings = get_settings()
    page, workflow_id = await db(timeline.procedure_of, subject)
    case = await db(sealed_case_of, subject)
    return render(request, "replay.html", subject=subject, tl=tl, check=check, span=span, kind=kind or "",
                  actor=actor or "", step=max(1, span // 400), procedure_url=page, case=case,
                  temporal_url=temporal_url(settings, workflow_id), subject_label=names.who(subject))

