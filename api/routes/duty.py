"""The duty day: schedules, shift handovers, drills, 六问 spot checks, contact freshness, statistics.

Also the pages people open from their phones (no bearer token; each link is signed, bound to
one person, expires and works once): the 六问 form `/spotcheck/{token}` and the contact
confirmation `/confirm/{token}`; the voice menu of a spot-check call (Twilio, signed callbacks)
and the simulator's way to play its keypresses.
"""
from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.templating import Jinja2Templates
from pydantic import BaseModel, Field
from twilio.twiml.voice_response import VoiceResponse

from api.deps import Anyone, Caller, DutyOfficer, ReadSessionDep, RowId, SettingsDep, TemporalDep, require
from api.routes.webhooks import TwilioParams
from api.services import duty as svc
from api.services.answers import AnswerError, acknowledge
from config import get_settings
from definitions.loader import cached_library, load_library
from store.audit import NewEvent, append
from store.db import session_scope
from store.directory import Person, mask_mobile
from store.duty import CONFIRM_SALT, FORM_SALT, SpotCheck, callout_statistics, drill_statistics, read_token
from store.links import LinkError, consume, is_used
from store.messages import OutboxMessage
from workflows.handover import HandOverIn, NoteIn, NoteItem, TakeOverIn
from workflows.spotcheck import AnswerIn, ResolveIn

router = APIRouter(tags=["duty day"])
templates = Jinja2Templates(directory=Path(__file__).resolve().parents[1] / "templates")
Chief = Annotated[Caller, Depends(require("duty_chief", "leading_leader"))]
Admin = Annotated[Caller, Depends(require())]
LINK_STATUS = {"expired": 410, "used": 409, "invalid": 403}
FORM_MAX_AGE = 8 * 86400


def _lib():
    return load_library(get_settings().definitions_dir)


def _err(exc: svc.DutyError) -> HTTPException:
    return HTTPException(exc.status, detail=str(exc))


# ================================================================== schedules


class NoteBody(BaseModel):
    note: str = Field(default="", max_length=500, description="why (kept on the schedule and in the audit trail)")


@router.get("/api/schedules", summary="The duty day's schedules: drills, handover, spot-check sweep, confirmation round")
async def schedules(client: TemporalDep, settings: SettingsDep, _: Anyone) -> list[dict]:
    try:
        return await svc.list_schedules(client, _lib(), settings)
    except svc.DutyError as exc:
        raise _err(exc) from exc


@router.post("/api/schedules/sync", summary="Create or update every schedule from definitions/duty (paused stay paused)")
async def sync(client: TemporalDep, settings: SettingsDep, caller: Admin) -> dict:
    try:
        return await svc.sync_schedules(client, _lib(), settings, caller.actor)
    except svc.DutyError as exc:
        raise _err(exc) from exc


@router.post("/api/schedules/{schedule_id}/{action}", summary="Pause, unpause or trigger a schedule now")
async def control(schedule_id: str, action: Literal["pause", "unpause", "trigger"], client: TemporalDep,
                  settings: SettingsDep, caller: Chief, body: NoteBody | None = None) -> dict:
    try:
        return await svc.control_schedule(client, _lib(), settings, schedule_id, action, (body or NoteBody()).note,
                                          caller.actor)
    except svc.DutyError as exc:
        raise _err(exc) from exc


# ================================================================== handovers 交接班


class HandoverStart(BaseModel):
    shift_at: datetime | None = Field(default=None, description="the change of duty chief; default: now")


class NoteEdit(BaseModel):
    items: list[NoteItem] | None = Field(default=None, max_length=500)
    text: str | None = Field(default=None, max_length=10000)


class HandOverBody(BaseModel):
    text: str | None = Field(default=None, max_length=10000)


class TakeOverBody(BaseModel):
    note: str | None = Field(default=None, max_length=2000)


@router.post("/api/handovers", status_code=201, summary="Open the handover of a shift change (also done by the schedule)",
             responses={200: {"description": "Opened before (same shift change): as it stands, with duplicate: true"}})
async def open_handover(client: TemporalDep, settings: SettingsDep, caller: DutyOfficer,
                        body: HandoverStart | None = None):
    shift_at = body.shift_at if body else None
    if shift_at is not None and shift_at.tzinfo is None:
        raise HTTPException(422, detail="shift_at: give a time zone, e.g. 2026-07-01T08:30:00+08:00")
    try:
        view, existed = await svc.start_handover(client, _lib(), settings, shift_at, caller.actor)
    except svc.DutyError as exc:
        raise _err(exc) from exc
    return JSONResponse(status_code=200 if existed else 201, content={**view.model_dump(mode="json"), "duplicate": existed})


@router.get("/api/handovers", summary="Handovers, newest first")
def handovers(_: Anyone, limit: int = 50) -> list[dict]:
    return svc.handover_list(max(1, min(limit, 500)))


@router.get("/api/handovers/{handover_id}", summary="One handover: the note, who handed over and took over, when, the timeline")
def handover(handover_id: str, _: Anyone) -> dict:
    found = svc.handover_detail(handover_id)
    if found is None:
        raise HTTPException(404, detail=f"no handover {handover_id!r}")
    return found


async def _handover_step(client, handover_id: str, action: str, req) -> dict:
    try:
        return (await svc.handover_step(client, handover_id, action, req)).model_dump(mode="json")
    except svc.DutyError as exc:
        raise _err(exc) from exc


@router.post("/api/handovers/{handover_id}/note", summary="The outgoing duty chief edits the handover note")
async def edit_note(handover_id: str, body: NoteEdit, client: TemporalDep, caller: DutyOfficer) -> dict:
    return await _handover_step(client, handover_id, "note", NoteIn(actor=caller.actor, role=caller.role, **body.model_dump()))


@router.post("/api/handovers/{handover_id}/hand-over", summary="The outgoing duty chief hands over (交班)")
async def hand_over(handover_id: str, client: TemporalDep, caller: DutyOfficer, body: HandOverBody | None = None) -> dict:
    return await _handover_step(client, handover_id, "hand_over",
                                HandOverIn(actor=caller.actor, role=caller.role, text=body.text if body else None))


@router.post("/api/handovers/{handover_id}/take-over", summary="The incoming duty chief takes over (接班)")
async def take_over(handover_id: str, client: TemporalDep, caller: DutyOfficer, body: TakeOverBody | None = None) -> dict:
    return await _handover_step(client, handover_id, "take_over",
                                TakeOverIn(actor=caller.actor, role=caller.role, note=body.note if body else None))


# ================================================================== drills 演练


@router.get("/api/drills", summary="Drill runs, newest first, with each one's response rate within its window")
def drills(_: Anyone, limit: int = 100, drill_id: str | None = None) -> dict:
    with session_scope(write=False) as s:
        stats = drill_statistics(s)
    return {"runs": svc.drill_list(max(1, min(limit, 1000)), drill_id), "statistics": stats}


@router.get("/api/drills/{run_id}", summary="One drill run: the sample, who answered within the window")
def drill(run_id: str, _: Anyone) -> dict:
    found = svc.drill_detail(run_id)
    if found is None:
        raise HTTPException(404, detail=f"no drill run {run_id!r}")
    return found


@router.post("/api/drill-programme/{drill_id}/run", status_code=202, summary="Run a drill now, outside its schedule")
async def run_drill(drill_id: str, client: TemporalDep, settings: SettingsDep, caller: Chief) -> dict:
    try:
        return {"run_id": await svc.run_drill(client, _lib(), settings, drill_id, caller.actor)}
    except svc.DutyError as exc:
        raise _err(exc) from exc


# ================================================================== statistics: drills apart


@router.get("/api/statistics/callouts", summary="Real call-outs in a period (drills are never counted) and drills apart")
def statistics(_: Anyone, since: datetime | None = None, until: datetime | None = None) -> dict:
    with session_scope(write=False) as s:
        return {"callouts": callout_statistics(s, since, until), "drills": drill_statistics(s, since)}


# ================================================================== 六问 spot checks


class SpotCheckStart(BaseModel):
    callout_id: str = Field(min_length=1, max_length=300)


class AnswerBody(BaseModel):
    person_id: str = Field(min_length=1, max_length=100)
    answers: dict[str, bool] = Field(description="question id -> yes (true) / no (false), every question")
    note: str | None = Field(default=None, max_length=2000, description="e.g. 电话抽查")


class ResolveBody(BaseModel):
    key: str = Field(min_length=1, max_length=300, description="the follow-up's key (town/person)")
    note: str = Field(min_length=1, max_length=2000, description="what was done")


@router.post("/api/spotchecks", status_code=201, summary="Start a 六问 spot check of a call-out now (the sweep does it too)")
async def start_spotcheck(body: SpotCheckStart, client: TemporalDep, settings: SettingsDep, caller: DutyOfficer) -> dict:
    try:
        return {"check_id": await svc.start_spotcheck(client, _lib(), settings, body.callout_id, caller.actor)}
    except svc.DutyError as exc:
        raise _err(exc) from exc


@router.get("/api/spotchecks", summary="Spot checks, newest first")
def spotchecks(_: Anyone, limit: int = 100) -> list[dict]:
    return svc.spotcheck_list(max(1, min(limit, 1000)))


@router.get("/api/spotchecks/{check_id}", summary="One spot check: the sample, every answer, the follow-ups")
def spotcheck(check_id: str, _: Anyone) -> dict:
    found = svc.spotcheck_detail(check_id)
    if found is None:
        raise HTTPException(404, detail=f"no spot check {check_id!r}")
    return found


@router.post("/api/spotchecks/{check_id}/answers", summary="Record answers taken by phone, on the person's behalf")
async def answer_by_phone(check_id: str, body: AnswerBody, client: TemporalDep, caller: DutyOfficer) -> dict:
    req = AnswerIn(actor=caller.actor, role=caller.role, person_id=body.person_id, answers=body.answers, channel="phone",
                   note=body.note, ref=f"phone:{caller.actor}:{body.person_id}:{uuid.uuid4().hex[:8]}")
    try:
        return await svc.spotcheck_answer(client, check_id, req)
    except svc.DutyError as exc:
        raise _err(exc) from exc


@router.post("/api/spotchecks/{check_id}/resolve", summary="Resolve a follow-up: what the town did")
async def resolve_followup(check_id: str, body: ResolveBody, client: TemporalDep, caller: Anyone) -> dict:
    req = ResolveIn(actor=caller.actor, role=caller.role, key=body.key, note=body.note)
    try:
        return (await svc.spotcheck_resolve(client, check_id, req)).model_dump(mode="json")
    except svc.DutyError as exc:
        raise _err(exc) from exc


# ------------------------------------------------------------------ the SMS form (signed link)


def _page(request: Request, template: str, status: int = 200, **ctx) -> HTMLResponse:
    return templates.TemplateResponse(request, template, ctx, status_code=status)


def _consume(data: dict) -> None:
    with session_scope() as s:
        consume(s, data)


def _used(data: dict) -> bool:
    with session_scope(write=False) as s:
        return is_used(s, data)


@router.get("/spotcheck/{token}", response_class=HTMLResponse, include_in_schema=False)
def spotcheck_form(token: str, request: Request, settings: SettingsDep) -> HTMLResponse:
    try:
        data = read_token(settings.signing_key(), token, FORM_MAX_AGE, FORM_SALT)
        if _used(data):
            raise LinkError("used", "您已作答,谢谢 / this form was answered already")
    except LinkError as exc:
        return _page(request, "duty_form.html", LINK_STATUS[exc.reason], state="error", message=str(exc))
    ctx = svc.form_context(data["s"], data["p"])
    if ctx is None:
        return _page(request, "duty_form.html", 404, state="error", message="抽查不存在 / no such spot check")
    if ctx["answered"]:
        return _page(request, "duty_form.html", 409, state="error", message="您已作答,谢谢 / answered already")
    if ctx["check_status"] not in ("running", "closed"):  # (closed: answered late, recorded all the same)
        return _page(request, "duty_form.html", 409, state="error",
                     message="抽查尚未开始或已取消 / the spot check has not started or was skipped")
    return _page(request, "duty_form.html", state="form", **ctx)


@router.post("/spotcheck/{token}", response_class=HTMLResponse, include_in_schema=False)
async def spotcheck_form_answer(token: str, request: Request, settings: SettingsDep) -> HTMLResponse:
    try:
        data = read_token(settings.signing_key(), token, FORM_MAX_AGE, FORM_SALT)
        if await asyncio.to_thread(_used, data):
            raise LinkError("used", "您已作答,谢谢 / this form was answered already")
    except LinkError as exc:
        return _page(request, "duty_form.html", LINK_STATUS[exc.reason], state="error", message=str(exc))
    ctx = await asyncio.to_thread(svc.form_context, data["s"], data["p"])
    if ctx is None:
        return _page(request, "duty_form.html", 404, state="error", message="抽查不存在 / no such spot check")
    form = await request.form()
    answers = {}
    for q in ctx["questions"]:
        v = form.get(q["id"])
        if v not in ("yes", "no"):
            return _page(request, "duty_form.html", 422, state="form", error=f"请回答第{ctx['questions'].index(q) + 1}问 / "
                         f"please answer: {q['en']}", **ctx)
        answers[q["id"]] = v == "yes"
    client = await request.app.state.temporal()
    if client is None:
        return _page(request, "duty_form.html", 503, state="error", message="系统繁忙,请稍后重试 / please try again shortly")
    req = AnswerIn(actor=data["p"], role="person", person_id=data["p"], answers=answers, channel="link",
                   ref=f"link:{data['j']}")
    late = False
    try:
        late = (await svc.spotcheck_answer(client, data["s"], req))["recorded"] == "late"
        await asyncio.to_thread(_consume, data)
    except svc.DutyError as exc:
        return _page(request, "duty_form.html", exc.status, state="error", message=str(exc))
    except LinkError:
        pass  # answered twice at once: the answer stands
    return _page(request, "duty_form.html", state="done", late=late,
                 no=[q for q in ctx["questions"] if not answers[q["id"]]])


# ------------------------------------------------------------------ the voice menu (Twilio) and the simulator


async def record_keys(client, outbox_id: int, keys: str, ref: str) -> dict:
    """Keys pressed on a spot-check call, one per question (1 yes, 2 no): the person's answers."""
    def read():
        with session_scope(write=False) as s:
            msg = s.get(OutboxMessage, outbox_id)
            check = s.get(SpotCheck, msg.subject) if msg and msg.subject else None
            return msg, check

    msg, check = await asyncio.to_thread(read)
    if msg is None or check is None or (msg.meta or {}).get("procedure") != "spotcheck" or msg.channel != "voice":
        raise svc.DutyError(404, f"message {outbox_id} is not a spot-check call")
    ids = [q["id"] for q in check.questions]
    if len(keys) != len(ids) or set(keys) - {"1", "2"}:
        raise svc.DutyError(422, f"keys: one key per question ({len(ids)}), 1 yes or 2 no; got {keys!r}")
    req = AnswerIn(actor=msg.person_id or "", role="person", person_id=msg.person_id or "", channel="voice", ref=ref,
                   answers={i: k == "1" for i, k in zip(ids, keys)})
    view = await svc.spotcheck_answer(client, check.id, req)
    return {"handled": "answers", "check_id": check.id, "person_id": msg.person_id, "recorded": view["recorded"],
            "answers": next(p["answers"] for p in view["persons"] if p["person_id"] == msg.person_id)}


def _ivr_row(outbox_id: str | None, call_sid: str | None) -> dict | None:
    with session_scope() as s:
        msg = s.get(OutboxMessage, int(outbox_id)) if outbox_id and outbox_id.isdigit() else None
        if msg is None or (msg.provider_id not in (None, call_sid)):
            return None
        if msg.provider_id is None:
            msg.provider_id = call_sid
        check = s.get(SpotCheck, msg.subject or "")
        if check is None:
            return None
        return {"id": msg.id, "intro": (msg.meta or {}).get("voice_text") or msg.body, "questions": check.questions}


def _ivr_url(path: str, **q) -> str:
    return f"{get_settings().base_url}/api/webhooks/twilio/spotcheck/{path}?{urlencode(q)}"


def _ask(row: dict, q: int, keys: str, n: int, intro: bool) -> VoiceResponse:
    vr = VoiceResponse()
    if intro:
        vr.say(row["intro"], language="zh-CN")
    q = min(q, len(row["questions"]) - 1)
    question = row["questions"][q]
    g = vr.gather(num_digits=1, action=_ivr_url("gather", o=row["id"], q=q, a=keys, n=n), method="POST", timeout=8)
    g.say(f"第{q + 1}问:{question['zh']}是请按1,否请按2,重听请按9。", language="zh-CN")
    if n + 1 < 3:
        vr.redirect(_ivr_url("twiml", o=row["id"], q=q, a=keys, n=n + 1), method="POST")
    else:
        vr.say("未收到按键,稍后将以短信发送问卷,再见。", language="zh-CN")
        vr.hangup()
    return vr


def _small(request: Request, name: str) -> int:
    """A question or round number from the callback URL (ours, signed); anything else reads as 0."""
    value = request.query_params.get(name, "0")
    return int(value) if value.isdigit() and len(value) < 4 else 0


@router.post("/api/webhooks/twilio/spotcheck/twiml", include_in_schema=False)
async def ivr_twiml(request: Request, params: TwilioParams) -> Response:
    row = await asyncio.to_thread(_ivr_row, request.query_params.get("o"), params.one("CallSid"))
    if row is None:
        raise HTTPException(404, detail="no spot-check call with this id")
    q, n, keys = _small(request, "q"), _small(request, "n"), request.query_params.get("a", "")
    return Response(str(_ask(row, q, keys, n, intro=q == 0 and n == 0)), media_type="application/xml")


@router.post("/api/webhooks/twilio/spotcheck/gather", include_in_schema=False)
async def ivr_gather(request: Request, params: TwilioParams) -> Response:
    sid = params.one("CallSid")
    row = await asyncio.to_thread(_ivr_row, request.query_params.get("o"), sid)
    if row is None:
        raise HTTPException(404, detail="no spot-check call with this id")
    q, keys = _small(request, "q"), request.query_params.get("a", "")
    digit = (params.one("Digits") or "").strip()
    if digit not in ("1", "2"):  # 9 or anything else: the question again
        return Response(str(_ask(row, q, keys, 0, intro=False)), media_type="application/xml")
    keys += digit
    if q + 1 < len(row["questions"]):
        return Response(str(_ask(row, q + 1, keys, 0, intro=False)), media_type="application/xml")
    client = await request.app.state.temporal()
    vr = VoiceResponse()
    try:
        if client is None:
            raise svc.DutyError(503, "Temporal is not reachable")
        await record_keys(client, row["id"], keys, ref=f"ivr:{sid}")
        vr.say("您的回答已记录,谢谢。", language="zh-CN")
        vr.say("Your answers are recorded. Thank you.", language="en-US")
    except svc.DutyError:
        vr.say("抱歉,回答未能记录,稍后将以短信发送问卷。", language="zh-CN")
    vr.hangup()
    return Response(str(vr), media_type="application/xml")


class SimulatedKeys(BaseModel):
    keys: str = Field(pattern=r"^[12]{1,9}$", description="one key per question: 1 yes, 2 no (e.g. 112111)")


@router.post("/api/simulator/spotcheck/{message_id}", summary="Play a person's keypresses on a spot-check call (simulator)")
async def simulate_keys(message_id: RowId, body: SimulatedKeys, client: TemporalDep, settings: SettingsDep,
                        _: DutyOfficer) -> dict:
    if settings.gateway != "simulator":
        raise HTTPException(409, detail="the simulator is not the gateway in use")
    try:
        return await record_keys(client, message_id, body.keys, ref=f"sim:{message_id}")
    except svc.DutyError as exc:
        raise _err(exc) from exc


# ================================================================== contact freshness


class RoundStart(BaseModel):
    deadline: datetime | None = Field(default=None, description="default: the next round_by day (20 April)")


@router.post("/api/freshness/rounds", status_code=202, summary="Start a contact confirmation round now (the schedule does it yearly)")
async def start_round(client: TemporalDep, settings: SettingsDep, caller: Admin, body: RoundStart | None = None) -> dict:
    deadline = body.deadline if body else None
    if deadline is not None and (deadline.tzinfo is None or deadline <= datetime.now(UTC)):
        raise HTTPException(422, detail="deadline: a future time with a time zone")
    try:
        return {"round_id": await svc.start_round(client, _lib(), settings, deadline, caller.actor)}
    except svc.DutyError as exc:
        raise _err(exc) from exc


@router.get("/api/freshness/rounds", summary="Confirmation rounds, newest first")
def rounds(_: Admin) -> list[dict]:
    return svc.rounds()


@router.get("/api/freshness/rounds/{round_id}", summary="One round: counts; persons (filter: confirmed, unconfirmed, asked, bounced)")
def round_detail(round_id: str, _: Admin,
                 state: Literal["pending", "asked", "confirmed", "unconfirmed", "bounced"] | None = None) -> dict:
    found = svc.round_detail(round_id, state)
    if found is None:
        raise HTTPException(404, detail=f"no round {round_id!r}")
    return found


@router.get("/api/freshness/contacts", summary="Persons whose contact data is stale (not confirmed in time) or whose number fails")
def contacts(_: Admin, which: Literal["stale", "failing", "all"] = "stale") -> list[dict]:
    try:
        return svc.contact_list(_lib(), which)
    except svc.DutyError as exc:
        raise _err(exc) from exc


@router.get("/api/freshness/preview", summary="Who a call-out would reach whose contact data is stale or failing")
def preview(session: ReadSessionDep, _: DutyOfficer, event: str = Query(min_length=1, max_length=200),
            level: Literal["blue", "yellow", "orange", "red"] = "orange",
            towns: Annotated[list[str], Query(max_length=500)] = []) -> dict:  # noqa: B006
    from definitions.schema.common import Level
    from store.targets import resolve_targets

    lib = _lib()
    loaded = lib.callout_plan_for(event, Level(level))
    if loaded is None:
        raise HTTPException(422, detail="event: no call-out plan matches and there is no default plan")
    plan = loaded.model
    found, _gaps = resolve_targets(session, plan, towns, [t.id for t in plan.tiers_for(Level(level))], datetime.now(UTC))
    warnings = svc.target_warnings(session, lib, found)
    return {"plan": plan.id, "total": len(found), "warnings": warnings,
            "stale": sum(1 for w in warnings if w["stale"]), "failing": sum(1 for w in warnings if w["failing"])}


# ------------------------------------------------------------------ the confirmation link


def _person(person_id: str) -> Person | None:
    with session_scope(write=False) as s:
        return s.get(Person, person_id)


def _confirm_directly(data: dict) -> None:
    """The round has closed (or never sent this link's message): the confirmation still counts."""
    from activities.duty import confirm_contact

    now = datetime.now(UTC)
    with session_scope() as s:
        confirm_contact(s, data["s"], data["p"], now, "link")
        append(s, [NewEvent(subject=data["s"], kind="freshness.confirmed_late", step_id=f"late/{data['p']}/{data['j']}",
                            actor=data["p"], channel="link", at=now, payload={"person_id": data["p"]})])


@router.get("/confirm/{token}", response_class=HTMLResponse, include_in_schema=False)
def confirm_page(token: str, request: Request, settings: SettingsDep) -> HTMLResponse:
    lib = cached_library(get_settings().definitions_dir)  # a public page: no parse of every definition per request
    max_age = int(lib.duty().freshness.link_valid.total_seconds()) if lib.duty() else 60 * 86400
    try:
        data = read_token(settings.signing_key(), token, max_age, CONFIRM_SALT)
        if _used(data):
            raise LinkError("used", "您已确认,谢谢 / confirmed already")
    except LinkError as exc:
        return _page(request, "duty_confirm.html", LINK_STATUS[exc.reason], state="error", message=str(exc))
    p = _person(data["p"])
    if p is None:
        return _page(request, "duty_confirm.html", 404, state="error", message="人员不存在 / unknown person")
    return _page(request, "duty_confirm.html", state="form", name=p.name, mobile=mask_mobile(p.mobile),
                 mobile2=mask_mobile(p.mobile2) if p.mobile2 else "")


@router.post("/confirm/{token}", response_class=HTMLResponse, include_in_schema=False)
async def confirm(token: str, request: Request, settings: SettingsDep) -> HTMLResponse:
    lib = cached_library(get_settings().definitions_dir)  # a public page: no parse of every definition per request
    max_age = int(lib.duty().freshness.link_valid.total_seconds()) if lib.duty() else 60 * 86400
    try:
        data = read_token(settings.signing_key(), token, max_age, CONFIRM_SALT)
        if await asyncio.to_thread(_used, data):
            raise LinkError("used", "您已确认,谢谢 / confirmed already")
    except LinkError as exc:
        return _page(request, "duty_confirm.html", LINK_STATUS[exc.reason], state="error", message=str(exc))
    client = await request.app.state.temporal()
    told = 0
    if client is not None:
        try:
            told = (await acknowledge(client, data["s"], data["p"], "link", ref=f"link:{data['j']}")).told
        except AnswerError:
            told = 0
    if not told:
        await asyncio.to_thread(_confirm_directly, data)
    try:
        await asyncio.to_thread(_consume, data)
    except LinkError:
        pass
    return _page(request, "duty_confirm.html", state="done")
