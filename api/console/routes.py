"""The web console: server-rendered pages (Jinja2 + htmx), live call-out boards by server-sent events.

Every page needs a console session (`auth.py`); every POST checks the session's CSRF
token. Actions go through the same service functions as the REST API.
"""
from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

import structlog
from fastapi import APIRouter, Depends, Form, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.sse import EventSourceResponse, ServerSentEvent
from fastapi.templating import Jinja2Templates
from pydantic import ValidationError
from sqlmodel import col, select
from starlette.background import BackgroundTask

from api.cap import CapError
from api.console import auth, services, streams
from api.console.i18n import (
    CHANNEL_NAMES,
    LEVEL_NAMES,
    STATE_NAMES,
    lang_of,
    pick,
    translator,
)
from api.console.i18n import COOKIE as LANG_COOKIE
from api.deps import DUTY, MAX_INT, Offset, RowId, get_temporal
from api.security import masked_message
from api.services.answers import AnswerError, acknowledge
from api.services.warnings import (
    IntakeError,
    Normalised,
    WarningIn,
    from_cap,
    from_json,
    intake,
)
from config import get_settings
from definitions.loader import Library, load_library
from store.audit import verify
from store.db import session_scope
from store.replay import STATES, jsonable

router = APIRouter(prefix="/console", tags=["console"], include_in_schema=False)
templates = Jinja2Templates(directory=Path(__file__).parent / "templates")
SUPERVISORS = ("supervisor", "duty_chief", "leading_leader")
POLL_S = 0.5
ROWS_PER_EVENT = 1000
log = structlog.get_logger("yingji.console")


# ------------------------------------------------------------------ rendering


def _local(value: Any, fmt: str = "%m-%d %H:%M:%S") -> str:
    if value is None or value == "":
        return ""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.astimezone(ZoneInfo(get_settings().timezone)).strftime(fmt)


templates.env.filters["local"] = _local
templates.env.filters["json"] = lambda v: json.dumps(v, ensure_ascii=False, default=str)
templates.env.filters["hide_links"] = masked_message  # one-time links and login codes, for every role


def render(request: Request, name: str, status: int = 200, **ctx: Any) -> HTMLResponse:
    query_lang = request.query_params.get("lang")
    lang = lang_of(query_lang, request.cookies.get(LANG_COOKIE))
    i = pick(lang)
    user: auth.ConsoleUser | None = getattr(request.state, "console_user", None)
    settings = get_settings()
    base = {"t": translator(lang), "lang": lang, "user": user, "csrf": user.csrf if user else "",
            "states": {k: v[i] for k, v in STATE_NAMES.items()}, "levels": {k: v[i] for k, v in LEVEL_NAMES.items()},
            "channels": {k: v[i] for k, v in CHANNEL_NAMES.items()}, "i": i, "path": request.url.path,
            "simulator": settings.gateway == "simulator", "duty": DUTY, "supervisors": SUPERVISORS,
            "tz": settings.timezone, "tier_labels": {k: v[i] for k, v in ctx.get("tier_names", {}).items()}}
    resp = templates.TemplateResponse(request, name, {**base, **ctx}, status_code=status)
    if query_lang in ("zh", "en"):
        resp.set_cookie(LANG_COOKIE, query_lang, max_age=365 * 86400, samesite="strict", path="/")
    resp.headers["Cache-Control"] = "no-store"
    return resp


def t_of(request: Request):
    return translator(lang_of(request.query_params.get("lang"), request.cookies.get(LANG_COOKIE)))


def forbidden(request: Request) -> HTMLResponse:
    return render(request, "message.html", status=403, kind="error", message=translator(
        lang_of(request.query_params.get("lang"), request.cookies.get(LANG_COOKIE)))("forbidden"))


_library: tuple[tuple, Library] | None = None


def library() -> Library:
    """The definitions, parsed again only when a file changed (every page needs them)."""
    global _library
    root = Path(get_settings().definitions_dir)
    stamp = (str(root), *sorted((str(p), p.stat().st_mtime_ns, p.stat().st_size) for p in root.rglob("*.y*ml")))
    if _library is None or _library[0] != stamp:
        _library = (stamp, load_library(root))
    return _library[1]


async def db(fn, *args, write: bool = False, **kw):
    """Run a function with a session on a thread: no transaction is held across an await."""

    def work():
        with session_scope(write=write) as s:
            return fn(s, *args, **kw)

    return await asyncio.to_thread(work)


# ------------------------------------------------------------------ login


@router.get("", include_in_schema=False)
def home() -> RedirectResponse:
    return RedirectResponse("/console/desk", status_code=303)


def _login_page(request: Request, status: int = 200, **ctx: Any) -> HTMLResponse:
    csrf = request.cookies.get(auth.LOGIN_CSRF_COOKIE) or auth.new_login_csrf()
    resp = render(request, "login.html", status=status, login_csrf=csrf, next=_safe_next(request), **ctx)
    resp.set_cookie(auth.LOGIN_CSRF_COOKIE, csrf, max_age=3600, httponly=True, samesite="strict", path="/console")
    return resp


def _safe_next(request: Request, value: str | None = None) -> str:
    nxt = value or request.query_params.get("next") or "/console/desk"
    return nxt if nxt.startswith("/console") and not nxt.startswith("//") else "/console/desk"


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request) -> HTMLResponse:
    return _login_page(request)


async def _logged_in(request: Request, data: dict, nxt: str) -> Response:
    resp = RedirectResponse(_safe_next(request, nxt), status_code=303)
    auth.set_session(resp, request, await asyncio.to_thread(auth.session_cookie, get_settings(), data))
    resp.delete_cookie(auth.LOGIN_CSRF_COOKIE, path="/console")
    return resp


@router.post("/login/token")
async def login_token(request: Request, token: Annotated[str, Form(max_length=500)] = "",
                      next: Annotated[str, Form()] = "") -> Response:
    await auth.check_csrf(request, request.cookies.get(auth.LOGIN_CSRF_COOKIE))
    data = await asyncio.to_thread(auth.login_with_token, get_settings(), token)
    if data is None:
        return _login_page(request, 401, error="bad_token")
    return await _logged_in(request, data, next)


async def _send_code_after(settings, mobile: str, client: str) -> None:
    try:
        await auth.send_code(settings, mobile, client)
    except Exception:  # noqa: BLE001 - answered already; the log says why (masked)
        log.exception("login code not sent")


@router.post("/login/code")
async def login_code(request: Request, mobile: Annotated[str, Form(max_length=40)] = "",
                     next: Annotated[str, Form()] = "") -> Response:
    """The same answer, as fast, for a number that may log in, an unknown one and one over its caps:
    the code is made and sent after the answer (auth.py says why)."""
    cookie = request.cookies.get(auth.LOGIN_CSRF_COOKIE)
    await auth.check_csrf(request, cookie)
    resp = _login_page(request, info="code_sent", mobile=mobile, code_step=True)
    resp.background = BackgroundTask(_send_code_after, get_settings(), mobile, auth.client_hash(cookie))
    return resp


@router.post("/login/verify")
async def login_verify(request: Request, mobile: Annotated[str, Form(max_length=40)] = "",
                       code: Annotated[str, Form(max_length=12)] = "", next: Annotated[str, Form()] = "") -> Response:
    cookie = request.cookies.get(auth.LOGIN_CSRF_COOKIE)
    await auth.check_csrf(request, cookie)
    try:
        data = await asyncio.to_thread(auth.verify_code, get_settings(), mobile, code, auth.client_hash(cookie))
    except auth.CodeError as exc:
        return _login_page(request, 401, error=exc.reason, mobile=mobile, code_step=True)
    return await _logged_in(request, data, next)


@router.post("/logout")
async def logout(request: Request, data: auth.Leaving) -> Response:
    """Ends the session server-side (the cookie stops working everywhere), then forgets the cookie."""
    await asyncio.to_thread(auth.end_session, data)
    resp = RedirectResponse("/console/login", status_code=303)
    resp.delete_cookie(auth.COOKIE, path="/")
    return resp


# ------------------------------------------------------------------ my phone (the simulator)


def _my_messages(s, person_id: str, limit: int = 100) -> list[dict]:
    from store.messages import OutboxMessage
    from store.redact import ONE_TIME_LINK

    rows = s.exec(select(OutboxMessage).where(OutboxMessage.person_id == person_id)
                  .order_by(col(OutboxMessage.id).desc()).limit(limit))
    return [{"m": m, "links": list(dict.fromkeys(x.group(0) for x in ONE_TIME_LINK.finditer(f"{m.body} {m.ack_url or ''}")))}
            for m in rows]


@router.get("/phone", response_class=HTMLResponse)
async def my_phone(request: Request, user: auth.Viewer) -> HTMLResponse:
    """With the simulator, the messages sent to the logged-in person, whole (links that work):
    the demo's stand-in for that person's own phone. Nobody else sees them whole; with a real
    gateway they are on the real phone."""
    settings = get_settings()
    if settings.gateway != "simulator":
        return render(request, "message.html", status=404, kind="info", message=t_of(request)("phone_real"))
    if user.person_id is None:
        return render(request, "message.html", status=404, kind="info", message=t_of(request)("phone_nobody"))
    messages = await db(_my_messages, user.person_id)
    return render(request, "phone.html", messages=messages)


# ------------------------------------------------------------------ duty desk


@router.get("/desk", response_class=HTMLResponse)
async def desk(request: Request, user: auth.Viewer) -> HTMLResponse:
    lib = await asyncio.to_thread(library)
    data = await db(services.desk, lib, datetime.now(UTC))
    from api.services.incidents import incident_list

    from api.services.activations import listing as activation_list

    from api.console.reviews import open_reviews

    incidents = await asyncio.to_thread(incident_list, 20, "open", None)
    responses = await asyncio.to_thread(activation_list, 20, "active", None)
    reviews = await db(open_reviews, datetime.now(UTC))
    return render(request, "desk.html", now=datetime.now(UTC), incidents=incidents, responses=responses,
                  reviews=reviews, **data)


# ------------------------------------------------------------------ new call-out


def _warning_from_form(cap: str, identifier: str, event: str, level: str, headline: str, towns: list[str],
                       town_names: dict[str, str], drill: bool, user: auth.ConsoleUser) -> Normalised:
    if cap.strip():
        return from_cap(cap.strip().encode())
    data = WarningIn(identifier=identifier or f"console-{uuid.uuid4().hex}", sender=f"console:{user.label}",
                     level=level or None, event=event, headline=headline or f"{event}{LEVEL_NAMES.get(level, ('', ''))[0]}预警",
                     areas=towns, area_descs=[town_names.get(t, t) for t in towns], drill=drill)
    return from_json(data)


@router.get("/callouts/new", response_class=HTMLResponse)
async def new_callout(request: Request, user: auth.Viewer) -> HTMLResponse:
    if not user.may(*DUTY):
        return forbidden(request)
    lib = await asyncio.to_thread(library)
    towns = await db(services.towns)
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
    town_names = {u.id: u.name for u in await db(services.towns)}
    return _warning_from_form(f.cap, f.identifier, f.event, f.level, f.headline, f.towns, town_names, f.drill, user)


def _form_error(exc: Exception) -> str:
    if isinstance(exc, CapError):
        return f"CAP ({exc.reason}): {exc}"
    if isinstance(exc, ValidationError):
        err = exc.errors()[0]
        return f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}"
    return str(exc)


@router.post("/callouts/preview", response_class=HTMLResponse)
async def preview(request: Request, user: auth.Poster) -> HTMLResponse:
    if not user.may(*DUTY):
        return forbidden(request)
    f = await _read_form(request)
    try:
        w = await _normalised(f, user)
    except (CapError, IntakeError, ValidationError) as exc:
        return render(request, "_preview.html", error=_form_error(exc))
    lib = await asyncio.to_thread(library)
    data = await db(services.preview, lib, w, datetime.now(UTC))
    return render(request, "_preview.html", **data)


@router.post("/callouts/start")
async def start(request: Request, user: auth.Poster) -> Response:
    if not user.may(*DUTY):
        return forbidden(request)
    f = await _read_form(request)
    settings = get_settings()
    try:
        w = await _normalised(f, user)
        lib = await asyncio.to_thread(library)
        client = await request.app.state.temporal()
        result = await intake(client, settings, lib, w, source="console", actor=user.caller.actor)
    except (CapError, IntakeError, ValidationError) as exc:
        return render(request, "_preview.html", error=_form_error(exc))
    target = f"/console/callouts/{result.callout_id}" if result.callout_id else "/console/desk"
    if request.headers.get("hx-request"):
        return Response(status_code=204, headers={"HX-Redirect": target})
    return RedirectResponse(target, status_code=303)


# ------------------------------------------------------------------ call-out board


@router.get("/callouts/{callout_id}", response_class=HTMLResponse)
async def board(request: Request, callout_id: str, user: auth.Viewer, tier: str | None = None,
                state: str | None = None, offset: Offset = 0) -> HTMLResponse:
    lib = await asyncio.to_thread(library)
    data = await db(services.board, lib, callout_id, tier or None, state if state in STATES else None, offset)
    if data is None:
        if await db(services.starting, callout_id):
            return render(request, "message.html", kind="info", refresh=1, message=f"{callout_id}: "
                          + translator(lang_of(request.query_params.get("lang"), request.cookies.get(LANG_COOKIE)))(
                              "starting_callout"))
        return render(request, "message.html", status=404, kind="error", message=f"no call-out {callout_id!r}")
    settings = get_settings()
    return render(request, "board.html", since=datetime.now(UTC).isoformat(),
                  temporal_url=services.temporal_url(settings, callout_id), **data)


def _boards(app) -> streams.Broadcaster:
    """The app's one broadcaster of call-out boards (streams.py)."""
    boards = getattr(app.state, "boards", None)
    if boards is None:
        async def poll(callout_id: str, since: datetime) -> streams.Tick:
            lib = await asyncio.to_thread(library)

            def tick(s):
                from store.callouts import Callout

                # a row stamped shortly before its transaction committed is caught by the overlap
                rows, newest = services.changed_rows(s, lib, callout_id, since - timedelta(seconds=2))
                c = s.get(Callout, callout_id)
                return streams.Tick(rows, max(newest, since), services.tier_counts(s, callout_id),
                                    c.status if c else None)

            return await db(tick)

        boards = app.state.boards = streams.Broadcaster(poll, POLL_S)
    return boards


def _known_callout(s, callout_id: str) -> bool:
    from store.callouts import Callout

    return s.get(Callout, callout_id) is not None or services.starting(s, callout_id)


async def stream_slot(request: Request, callout_id: str, user: auth.Viewer):
    """404 for a call-out nobody knows; 429 past the session's streams; the slot is freed when the stream ends."""
    if not await db(_known_callout, callout_id):
        raise HTTPException(404, detail=f"no call-out {callout_id!r}")
    boards = _boards(request.app)
    key = boards.session_key(user.csrf)
    if not boards.acquire(key):
        raise HTTPException(429, detail=f"at most {streams.MAX_PER_SESSION} live boards per session; close one "
                                        f"/ 每个会话最多同时打开{streams.MAX_PER_SESSION}个实时看板",
                            headers={"Retry-After": "5"})
    try:
        yield boards
    finally:
        boards.release(key)


@router.get("/callouts/{callout_id}/stream", response_class=EventSourceResponse)
async def stream(request: Request, callout_id: str, boards: Annotated[streams.Broadcaster, Depends(stream_slot)],
                 since: str | None = None):
    """Server-sent events: every ~0.5 s, the targets that changed (deltas, never the whole table),
    the counts per tier when they change, and the status. A reconnecting browser sends the
    last event id (a time), and the stream resumes from there. One poll of the database per
    call-out serves every board watching it (streams.py)."""
    try:
        cursor = datetime.fromisoformat(request.headers.get("last-event-id") or since or "")
    except ValueError:
        cursor = datetime.now(UTC)
    cursor = cursor if cursor.tzinfo else cursor.replace(tzinfo=UTC)

    sent: dict[int, str] = {}
    last_counts = last_status = None
    ticks = boards.watch(callout_id, cursor)
    try:
        async for tick in ticks:
            if await request.is_disconnected():
                break
            fresh = []
            for r in tick.rows:
                sig = json.dumps(r, sort_keys=True, default=str)
                if sent.get(r["id"]) != sig:
                    sent[r["id"]] = sig
                    fresh.append(r)
            cursor = max(cursor, tick.newest)
            for i in range(0, len(fresh), ROWS_PER_EVENT):
                yield ServerSentEvent(event="rows", data=fresh[i:i + ROWS_PER_EVENT], id=cursor.isoformat())
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
    data = await db(services.target_messages, callout_id, target_id)
    if data is None:
        return render(request, "message.html", status=404, kind="error", message="no such target")
    return render(request, "_target.html", callout_id=callout_id, **data)


@router.post("/callouts/{callout_id}/targets/{target_id}/ack", response_class=HTMLResponse)
async def proxy_ack(request: Request, callout_id: str, target_id: RowId, user: auth.Poster,
                    note: Annotated[str, Form(min_length=1, max_length=1000)]) -> HTMLResponse:
    if not user.may(*DUTY):
        return forbidden(request)
    data = await db(services.target_messages, callout_id, target_id)
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
    return render(request, "_target.html", callout_id=callout_id, done=error is None, error=error,
                  **await db(services.target_messages, callout_id, target_id))


@router.post("/simulator/{message_id}", response_class=HTMLResponse)
async def simulate(request: Request, message_id: RowId, user: auth.Poster, outcome: Annotated[str, Form()],
                   callout_id: Annotated[str, Form()], target_id: Annotated[int, Form(ge=0, le=MAX_INT)],
                   digits: Annotated[str | None, Form()] = None) -> HTMLResponse:
    """The simulator's controls: the same code path as `POST /api/simulator/messages/{id}`."""
    if not user.may(*DUTY):
        return forbidden(request)
    from api.routes.messages import SimulatedOutcome
    from api.routes.messages import simulate as simulate_api

    error = None
    try:
        body = SimulatedOutcome(outcome=outcome, digits=digits)  # type: ignore[arg-type]
        await simulate_api(message_id, body, await get_temporal(request), get_settings(), user.caller)
    except ValidationError as exc:
        error = _form_error(exc)
    except HTTPException as exc:
        error = str(exc.detail)
    data = await db(services.target_messages, callout_id, target_id)
    if data is None:
        return render(request, "message.html", status=404, kind="error", message="no such target")
    return render(request, "_target.html", callout_id=callout_id, error=error, played=None if error else outcome,
                  **data)


@router.post("/callouts/{callout_id}/cancel")
async def cancel(request: Request, callout_id: str, user: auth.Poster,
                 reason: Annotated[str, Form(min_length=1, max_length=500)]) -> Response:
    if not user.may(*DUTY):
        return forbidden(request)
    from api.routes.callouts import CancelBody
    from api.routes.callouts import cancel as cancel_api

    try:
        await cancel_api(callout_id, CancelBody(reason=reason), await get_temporal(request), user.caller)
    except HTTPException as exc:
        return render(request, "message.html", status=exc.status_code, kind="error", message=str(exc.detail))
    return RedirectResponse(f"/console/callouts/{callout_id}", status_code=303)


# ------------------------------------------------------------------ supervisor replay


@router.get("/replay", response_class=HTMLResponse)
async def replay_index(request: Request, user: auth.Viewer, subject: str | None = None) -> Response:
    if not user.may(*SUPERVISORS):
        return forbidden(request)
    if subject:
        return RedirectResponse(f"/console/replay/{quote(subject.strip(), safe='/')}", status_code=303)
    lib = await asyncio.to_thread(library)
    data = await db(services.desk, lib, datetime.now(UTC))
    others = await db(services.replay_subjects)
    return render(request, "replay_index.html", callouts=data["running"] + data["ended"] + data["drills"], **others)


# `{subject:path}`: activations and reviews have subjects with a slash (activation/<id>, review/<id>); the
# state route comes first, or the page route would take ".../state" for a subject.
@router.get("/replay/{subject:path}/state", response_class=HTMLResponse)
async def replay_state(request: Request, subject: str, user: auth.Viewer,
                       t: Annotated[int | None, Query(ge=0, le=10**9)] = None,
                       at: datetime | None = None) -> HTMLResponse:
    """The state at an instant: `t` seconds after the first event (the slider), or an exact `at`."""
    if not user.may(*SUPERVISORS):
        return forbidden(request)
    from api.routes.replay import replay_subject

    tl = await db(services.timeline, subject, None, None, limit=1)
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
    return render(request, "_replay_state.html", subject=subject, at=at, seconds=t, tier_names=tier_names,
                  state=jsonable(state) if state else None, limit=300)


@router.get("/replay/{subject:path}", response_class=HTMLResponse)
async def replay_page(request: Request, subject: str, user: auth.Viewer, kind: str | None = None,
                      actor: str | None = None) -> HTMLResponse:
    if not user.may(*SUPERVISORS):
        return forbidden(request)
    tl = await db(services.timeline, subject, kind or None, actor or None)
    check = await db(verify, subject)
    if tl["count"] == 0:
        return render(request, "message.html", status=404, kind="error", message=f"no audit events of {subject!r}")
    span = max(int((tl["last"] - tl["first"]).total_seconds()) + 1, 1)
    settings = get_settings()
    page, workflow_id = await db(services.procedure_of, subject)
    case = await db(services.sealed_case_of, subject)
    return render(request, "replay.html", subject=subject, tl=tl, check=check, span=span, kind=kind or "",
                  actor=actor or "", step=max(1, span // 400), procedure_url=page, case=case,
                  temporal_url=services.temporal_url(settings, workflow_id))


# ------------------------------------------------------------------ directory and definitions


@router.get("/directory", response_class=HTMLResponse)
async def directory(request: Request, user: auth.Viewer, unit: str | None = None) -> HTMLResponse:
    data = await db(services.directory, unit)
    return render(request, "directory.html", **data)


@router.get("/definitions", response_class=HTMLResponse)
async def definitions(request: Request, user: auth.Viewer) -> HTMLResponse:
    lib = await asyncio.to_thread(library)
    return render(request, "definitions.html", lib=lib, root=str(lib.root))
