"""The board of one call-out: its targets per tier and state (a page of them, those nobody reached first), live
by server-sent events (one poll of the database per call-out serves every board watching it: streams.py), a
target's messages, the duty office's acknowledgement on someone's behalf (one or several with one note),
重新呼叫 (calling a person again), and cancelling."""
from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Form, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.sse import EventSourceResponse, ServerSentEvent

from api.console import auth, roles, streams
from api.console.pages import db, library, render, t_of, temporal_url
from api.deps import DUTY, Offset, RowId, get_temporal
from api.services import board as svc
from api.services import board_actions, callouts
from api.services import proposals as proposal_svc
from api.services.answers import shown
from api.services.answers import AnswerError, acknowledge
from config import get_settings
from store.replay import FAILED, STATES

router = APIRouter(prefix="/console", tags=["console"], include_in_schema=False)
POLL_S = 0.5
OVERLAP = timedelta(seconds=2)
"""How far before the newest change it has seen a board's poll reads again: the writers stamp a row just before their
commit (at most 0.65–1.23 s before it in the 100,000-person runs on PostgreSQL: docs/performance.md, "The board's
poll" and "Replies that follow the sends")."""
ROWS_PER_EVENT = 1000


@router.get("/callouts/{callout_id}", response_class=HTMLResponse)
async def board(request: Request, callout_id: str, user: auth.Viewer, tier: str | None = None,
                state: str | None = None, offset: Offset = 0) -> HTMLResponse:
    lib = await asyncio.to_thread(library)
    data = await db(svc.board, lib, callout_id, tier or None, state if state in STATES else None, offset)
    if data is None:
        if await db(svc.starting, callout_id):
            return render(request, "message.html", kind="info", refresh=1,
                          message=f"{callout_id}: " + t_of(request)("starting_callout"))
        return render(request, "message.html", status=404, kind="error", message=f"无此叫应 / no call-out {callout_id!r}")
    settings = get_settings()
    plan = lib.of("callout").get(data["c"].plan_id or "")
    return render(request, "board.html", since=datetime.now(UTC).isoformat(),
                  temporal_url=temporal_url(settings, callout_id), failed_statuses=sorted(FAILED),
                  may_act=user.may(*DUTY), plan_names=(plan.model.name_zh, plan.model.name_en) if plan else None,
                  proposals=await asyncio.to_thread(proposal_svc.for_callout, callout_id), **data)


async def detail(request: Request, callout_id: str, target_id: int, status: int = 200, **extra) -> HTMLResponse:
    """A target's pane: its messages (with the simulator's controls), 重新呼叫 and 代为确认 where they apply."""
    data = await db(svc.target_messages, callout_id, target_id)
    if data is None:
        return render(request, "message.html", status=404, kind="error", message="没有该叫应对象 / no such target")
    lib = await asyncio.to_thread(library)
    offer = await db(board_actions.recall_offer, lib, callout_id, target_id)
    return render(request, "_target.html", status=status, callout_id=callout_id, recall_channels=offer,
                  nonce=uuid.uuid4().hex, failed_statuses=sorted(FAILED),
                  **extra, **data)


def _with_library(s, fn, *args):
    """`fn(session, the definitions, *args)`: a board's read and its library on one thread, in one hop."""
    return fn(s, library(), *args)


def _boards(app) -> streams.Broadcaster:
    """The app's one broadcaster of call-out boards (streams.py)."""
    boards = getattr(app.state, "boards", None)
    if boards is None:
        async def poll(callout_id: str, since: datetime, sent: dict | None, wanted: frozenset | None) -> streams.Tick:
            # a row stamped shortly before its transaction committed is caught by the overlap; the rows the shared
            # poll has sent already, unchanged, are not read again (`sent`), nor the rows no board shows (`wanted`)
            rows, newest, counts, status = await db(_with_library, svc.tick, callout_id, since - OVERLAP, sent, wanted)
            return streams.Tick(rows, max(newest, since), counts, status)

        async def told(callout_id: str, target_ids: list[int], sent: dict) -> list[dict]:
            return await db(_with_library, svc.rows_of, callout_id, target_ids, sent)

        boards = app.state.boards = streams.Broadcaster(poll, POLL_S, told)
        shown.listen(boards.nudge)  # the answers this process shows go out at once, not at the next poll
    return boards


def page_rows(rows: Annotated[str | None, Query(max_length=svc.BOARD_LIMIT * 21)] = None) -> frozenset[int] | None:
    """`rows`: the targets a full page of the board shows (its ids, comma-separated, as board.html names them): the
    stream sends only those, for the browser drops every other row; none: every row (a page with room for more)."""
    if rows is None:
        return None
    ids = rows.split(",")
    if not all(i.isdigit() and len(i) <= 18 for i in ids) or len(ids) > svc.BOARD_LIMIT:
        raise HTTPException(400, detail=f"rows: 至多{svc.BOARD_LIMIT}个以逗号分隔的对象编号 / up to {svc.BOARD_LIMIT} "
                                        f"target ids, comma-separated")
    return frozenset(map(int, ids))


async def stream_slot(request: Request, callout_id: str, user: auth.Viewer):
    """404 for a call-out nobody knows; 429 past the session's streams; the slot is freed when the stream ends."""
    if not await db(svc.known, callout_id):
        raise HTTPException(404, detail=f"无此叫应 {callout_id!r} / no call-out {callout_id!r}")
    with _boards(request.app).held(user.csrf, "实时看板", "live boards") as boards:
        yield boards


@router.get("/callouts/{callout_id}/stream", response_class=EventSourceResponse)
async def stream(request: Request, callout_id: str, shows: Annotated[frozenset[int] | None, Depends(page_rows)],
                 boards: Annotated[streams.Broadcaster, Depends(stream_slot)], since: str | None = None):
    """Server-sent events: every ~0.5 s, the targets that changed (deltas, never the whole table),
    the counts per tier when they change, and the status; beside them, the targets this process has
    just shown answered, as soon as their answers commit (api/services/answers/shown.py). A reconnecting
    browser sends the last event id (a time), and the stream resumes from there. One poll of the database
    per call-out serves every board watching it (streams.py). A full page names its rows (`page_rows`): only those
    are made and sent to it."""
    try:
        cursor = datetime.fromisoformat(request.headers.get("last-event-id") or since or "")
    except ValueError:
        cursor = datetime.now(UTC)
    cursor = cursor if cursor.tzinfo else cursor.replace(tzinfo=UTC)

    sent: dict[int, tuple[list, str]] = {}
    last_counts = last_status = None
    ticks = boards.watch(callout_id, cursor, shows)
    try:
        async for tick in ticks:
            if await request.is_disconnected():
                break
            rows = tick.rows if shows is None else [r for r in tick.rows if r["id"] in shows]
            fresh = svc.fresh_rows(rows, sent)  # each row's JSON, neither a repeat nor older than one sent
            cursor = max(cursor, tick.newest)
            for i in range(0, len(fresh), ROWS_PER_EVENT):  # (FastAPI's encoder for `data` was 4 % of the API's
                # time under a burst of answers: docs/performance.md, "What the board cost the API")
                yield ServerSentEvent(event="rows", raw_data="[" + ",".join(fresh[i:i + ROWS_PER_EVENT]) + "]",
                                      id=cursor.isoformat())
            if tick.partial:  # rows an answer's writer told of: the counts and status come with the next poll
                continue
            if tick.counts != last_counts:
                last_counts = tick.counts
                yield ServerSentEvent(event="counts", data=tick.counts, id=cursor.isoformat())
            if tick.status != last_status:
                last_status = tick.status
                yield ServerSentEvent(event="status", data={"status": tick.status}, id=cursor.isoformat(), retry=2000)
    finally:
        await ticks.aclose()


@router.get("/callouts/{callout_id}/targets/{target_id}", response_class=HTMLResponse)
async def target_detail(request: Request, callout_id: str, target_id: RowId, user: auth.Viewer) -> HTMLResponse:
    return await detail(request, callout_id, target_id)


@router.post("/callouts/{callout_id}/targets/{target_id}/ack", response_class=HTMLResponse)
async def proxy_ack(request: Request, callout_id: str, target_id: RowId, user: roles.DutyUser,
                    note: Annotated[str, Form(min_length=1, max_length=1000)]) -> HTMLResponse:
    data = await db(svc.target_messages, callout_id, target_id)
    if data is None:
        return render(request, "message.html", status=404, kind="error", message="no such target")
    client = await get_temporal(request)
    now = datetime.now(UTC)
    actor = user.caller.actor
    error = None
    try:
        await acknowledge(client, callout_id, data["target"].person_id, "proxy", actor=actor, note=note,
                          ref=f"proxy:{actor}:{data['target'].person_id}:{now.timestamp()}", at=now)
    except AnswerError as exc:
        error = str(exc)
    return await detail(request, callout_id, target_id, done=error is None, error=error)


@router.post("/callouts/{callout_id}/targets/{target_id}/recall", response_class=HTMLResponse)
async def recall(request: Request, callout_id: str, target_id: RowId, user: roles.DutyUser,
                 nonce: Annotated[str, Form(min_length=8, max_length=64, pattern=r"^[0-9a-zA-Z_-]+$")],
                 channel: Annotated[list[str] | None, Form(max_length=5)] = None) -> HTMLResponse:
    """重新呼叫: the request's nonce (rendered with the form) makes a double click one recall; answered with what
    was sent once the shard workflow has recorded it, or the refusal (409 when that part has ended)."""
    lib = await asyncio.to_thread(library)
    try:
        out = await board_actions.recall(await get_temporal(request), lib, callout_id, target_id, channel or [],
                                         actor=user.caller.actor, ref=f"{user.caller.actor}:{nonce}")
    except board_actions.BoardActionError as exc:
        return await detail(request, callout_id, target_id, status=exc.status, error=str(exc))
    return await detail(request, callout_id, target_id, recalled=out)  # what was sent, once recorded


@router.post("/callouts/{callout_id}/ack-many", response_class=HTMLResponse)
async def proxy_ack_many(request: Request, callout_id: str, user: roles.DutyUser,
                         note: Annotated[str, Form(min_length=1, max_length=1000)],
                         target: Annotated[list[int] | None, Form(max_length=board_actions.MAX_BULK + 1)] = None
                         ) -> HTMLResponse:
    """Bulk 代为确认: the rows ticked on the board, one note for all."""
    try:
        out = await board_actions.confirm_many(await get_temporal(request), callout_id, target or [], note,
                                               user.caller.actor)
    except board_actions.BoardActionError as exc:
        return render(request, "_bulk_result.html", status=exc.status, error=str(exc))
    return render(request, "_bulk_result.html", **out)


@router.post("/callouts/{callout_id}/relays/{person_id}")
async def relay_on_behalf(request: Request, callout_id: str, person_id: str, user: roles.DutyUser,
                          households: Annotated[int, Form(ge=0, le=callouts.MAX_HOUSEHOLDS)],
                          reported_by: Annotated[str | None, Form(max_length=100)] = None) -> Response:
    """代录到户: the duty office records a village's relay (what the person or their grid worker phoned in)."""
    try:
        await callouts.confirm_relay(await get_temporal(request), callout_id, person_id, households,
                                     user.caller.actor, reported_by=(reported_by or "").strip() or None)
    except callouts.CalloutError as exc:
        return render(request, "message.html", status=exc.status, kind="error", message=str(exc))
    return RedirectResponse(f"/console/callouts/{callout_id}#relay", status_code=303)


@router.post("/callouts/{callout_id}/cancel")
async def cancel(request: Request, callout_id: str, user: roles.DutyUser,
                 reason: Annotated[str, Form(min_length=1, max_length=500)]) -> Response:
    try:
        await callouts.cancel(await get_temporal(request), callout_id, reason, user.caller.actor)
    except callouts.CalloutError as exc:
        return render(request, "message.html", status=exc.status, kind="error", message=str(exc))
    return RedirectResponse(f"/console/callouts/{callout_id}", status_code=303)
