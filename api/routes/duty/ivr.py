"""The voice menu of a 六问 spot-check call (Twilio TwiML, signed callbacks: one key per question) and the
simulator's way to play its keypresses. The answers are recorded by api.services.duty.record_keys."""
from __future__ import annotations

import asyncio
from urllib.parse import urlencode

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field
from twilio.twiml.voice_response import VoiceResponse

from api.deps import DutyOfficer, RowId, SettingsDep, TemporalDep
from api.routes.webhooks import TwilioParams
from api.services import duty as svc
from config import get_settings

router = APIRouter()
ASKS = 3  # a question is asked this often without a key before the call ends (the SMS form follows)


def _url(path: str, **q) -> str:
    return f"{get_settings().base_url}/api/webhooks/twilio/spotcheck/{path}?{urlencode(q)}"


def _ask(row: dict, q: int, keys: str, n: int, intro: bool) -> VoiceResponse:
    vr = VoiceResponse()
    if intro:
        vr.say(row["intro"], language="zh-CN")
    q = min(q, len(row["questions"]) - 1)
    question = row["questions"][q]
    g = vr.gather(num_digits=1, action=_url("gather", o=row["id"], q=q, a=keys, n=n), method="POST", timeout=8)
    g.say(f"第{q + 1}问:{question['zh']}是请按1,否请按2,重听请按9。", language="zh-CN")
    if n + 1 < ASKS:
        vr.redirect(_url("twiml", o=row["id"], q=q, a=keys, n=n + 1), method="POST")
    else:
        vr.say("未收到按键,稍后将以短信发送问卷,再见。", language="zh-CN")
        vr.hangup()
    return vr


def _xml(vr: VoiceResponse) -> Response:
    return Response(str(vr), media_type="application/xml")


def _small(request: Request, name: str) -> int:
    """A question or round number from the callback URL (ours, signed); anything else reads as 0."""
    value = request.query_params.get(name, "0")
    return int(value) if value.isdigit() and len(value) < 4 else 0


async def _call(request: Request, sid: str | None) -> dict:
    row = await asyncio.to_thread(svc.ivr_call, request.query_params.get("o"), sid)
    if row is None:
        raise HTTPException(404, detail="no spot-check call with this id")
    return row


@router.post("/api/webhooks/twilio/spotcheck/twiml", include_in_schema=False)
async def ivr_twiml(request: Request, params: TwilioParams) -> Response:
    row = await _call(request, params.one("CallSid"))
    q, n, keys = _small(request, "q"), _small(request, "n"), request.query_params.get("a", "")
    return _xml(_ask(row, q, keys, n, intro=q == 0 and n == 0))


@router.post("/api/webhooks/twilio/spotcheck/gather", include_in_schema=False)
async def ivr_gather(request: Request, params: TwilioParams) -> Response:
    sid = params.one("CallSid")
    row = await _call(request, sid)
    q, keys = _small(request, "q"), request.query_params.get("a", "")
    digit = (params.one("Digits") or "").strip()
    if digit not in ("1", "2"):  # 9 or anything else: the question again
        return _xml(_ask(row, q, keys, 0, intro=False))
    keys += digit
    if q + 1 < len(row["questions"]):
        return _xml(_ask(row, q + 1, keys, 0, intro=False))
    client = await request.app.state.temporal()
    vr = VoiceResponse()
    try:
        if client is None:
            raise svc.DutyError(503, "Temporal is not reachable")
        await svc.record_keys(client, row["id"], keys, ref=f"ivr:{sid}")
        vr.say("您的回答已记录,谢谢。", language="zh-CN")
        vr.say("Your answers are recorded. Thank you.", language="en-US")
    except svc.DutyError:
        vr.say("抱歉,回答未能记录,稍后将以短信发送问卷。", language="zh-CN")
    vr.hangup()
    return _xml(vr)


class SimulatedKeys(BaseModel):
    keys: str = Field(pattern=r"^[12]{1,9}$", description="one key per question: 1 yes, 2 no (e.g. 112111)")


@router.post("/api/simulator/spotcheck/{message_id}", response_model=svc.KeysOut,
             summary="Play a person's keypresses on a spot-check call (simulator)")
async def simulate_keys(message_id: RowId, body: SimulatedKeys, client: TemporalDep, settings: SettingsDep,
                        _: DutyOfficer) -> dict:
    if settings.gateway != "simulator":
        raise HTTPException(409, detail="the simulator is not the gateway in use")
    return await svc.record_keys(client, message_id, body.keys, ref=f"sim:{message_id}")
