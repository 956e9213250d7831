"""The duty desk (who is on duty, 待我处理 for the signed-in role, running call-outs, open incidents,
responses and reviews, recent warnings), live by server-sent events, and the reference pages: the
directory and the definitions.

The desk's stream carries the desk's alarms (api/services/desk_alarms.py: new warnings and call-outs,
overdue time limits, unreachable persons) and a fingerprint of the rest; one poll of the database
serves every desk open (a `streams.Broadcaster` under the one key "desk"), and desk.js sounds and shows
an alarm the page has not seen, then refreshes the desk."""
from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse
from fastapi.sse import EventSourceResponse, ServerSentEvent

from api.console import auth, streams
from api.console.pages import db, library, render
from api.services import desk as svc
from api.services import directory as people
from api.services.activations import listing as activation_list
from api.services.desk_alarms import alarms, changes
from api.services.incidents import incident_list
from api.services.reviews import open_reviews
from api.services.todo import todo

router = APIRouter(prefix="/console", tags=["console"], include_in_schema=False)
POLL_S = 0.5
FEED = "desk"  # every desk watches the same feed


@router.get("/desk", response_class=HTMLResponse)
async def desk(request: Request, user: auth.Viewer) -> HTMLResponse:
    lib = await asyncio.to_thread(library)
    now = datetime.now(UTC)
    data = await db(svc.desk, lib, now)
    incidents = await asyncio.to_thread(incident_list, 20, "open", None)
    responses = await asyncio.to_thread(activation_list, 20, "active", None)
    reviews = await db(open_reviews, now)
    known = [a["key"] for a in await db(alarms, now)]
    mine = await db(todo, user.role, user.person_id, now)
    return render(request, "desk.html", now=now, incidents=incidents, responses=responses, reviews=reviews,
                  alarm_keys=known, todo=mine, **data)


def _feed(app) -> streams.Broadcaster:
    """The app's one broadcaster of the desk (streams.py): one poll serves every desk open."""
    feed = getattr(app.state, "desk_feed", None)
    if feed is None:
        async def poll(_key: str, since: datetime, _sent: dict | None, _wanted: frozenset | None) -> streams.Tick:
            now = datetime.now(UTC)
            found = await db(alarms, now)
            return streams.Tick(found, since, await db(changes), None)

        feed = app.state.desk_feed = streams.Broadcaster(poll, POLL_S)
    return feed


async def stream_slot(request: Request, user: auth.Viewer):
    """429 past the session's streams; the slot is freed when the stream ends."""
    with _feed(request.app).held(user.csrf, "实时值班台", "live desks") as feed:
        yield feed


@router.get("/desk/stream", response_class=EventSourceResponse)
async def stream(request: Request, feed: Annotated[streams.Broadcaster, Depends(stream_slot)]):
    """Server-sent events: `alarms` (every alarm now: the page sounds the ones it has not seen) when they
    change, and `changed` when the rest of the desk moved (the page refreshes itself)."""
    last_keys = last_marks = None
    ticks = feed.watch(FEED, datetime.now(UTC))
    try:
        async for tick in ticks:
            if await request.is_disconnected():
                break
            keys = [a["key"] for a in tick.rows]
            if keys != last_keys:
                last_keys = keys
                yield ServerSentEvent(event="alarms", data=tick.rows, retry=2000)
            if tick.counts != last_marks:
                if last_marks is not None:
                    yield ServerSentEvent(event="changed", data={"at": datetime.now(UTC).isoformat()})
                last_marks = tick.counts
    finally:
        await ticks.aclose()


@router.get("/directory", response_class=HTMLResponse)
async def directory(request: Request, user: auth.Viewer, unit: str | None = None) -> HTMLResponse:
    data = await db(people.directory, unit)
    return render(request, "directory.html", **data)


@router.get("/definitions", response_class=HTMLResponse)
async def definitions(request: Request, user: auth.Viewer) -> HTMLResponse:
    lib = await asyncio.to_thread(library)
    return render(request, "definitions.html", lib=lib, root=str(lib.root))
