"""Gateway webhooks: Twilio's callbacks (inbound SMS, message status, the call's TwiML, keypresses,
call status). No bearer token: every request must carry a valid `X-Twilio-Signature`.

The signature covers the URL as Twilio requested it, so it is checked against
`PUBLIC_BASE_URL` + path + query (what Twilio was given), never the Host header a reverse
proxy passes on; both the current and the previous auth token are accepted (rotation).
Anything else gets 403 and reaches no workflow.

Each callback URL carries the outbox id (`?o=`), signed with the rest of the URL, so a
callback that arrives before the send's result is recorded still finds its message.

The 应急广播 platform's receipts (`POST /api/webhooks/broadcast`) are JSON signed with the shared
HMAC secret and a timestamp inside a replay window; a signature seen before is refused too.
"""
from __future__ import annotations

import asyncio
from typing import Annotated
from urllib.parse import parse_qsl, urlencode

import structlog
from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import Response
from sqlalchemy.exc import IntegrityError
from temporalio.client import Client
from twilio.request_validator import RequestValidator, compare
from twilio.twiml.messaging_response import MessagingResponse
from twilio.twiml.voice_response import VoiceResponse

from activities.gateways import hmac_scheme
from api.deps import SettingsDep
from api.services import signed_webhooks
from api.services.answers import AnswerError, gateway_report
from config import Settings, get_settings
from store.audit import NewEvent, append
from store.db import session_scope
from store.directory import mask_mobile
from store.messages import NotOurs, sent_message

log = structlog.get_logger("yingji.webhooks")
router = APIRouter(prefix="/api/webhooks", tags=["gateway webhooks"])
TWILIO = "/api/webhooks/twilio"
OPTED_OUT = "21610"
SMS_STATUS = {"accepted": "queued", "scheduled": "queued", "queued": "queued", "sending": "queued", "sent": "sent",
              "delivered": "delivered", "read": "delivered", "failed": "failed", "undelivered": "undelivered",
              "canceled": "canceled"}
FINAL = {"answered", "declined", "machine"}  # a call whose outcome is known already
NO_REPLY = str(MessagingResponse())  # most SMS replies: rendered once (the SDK's XML writer was 4 % of the API's CPU)
ROUNDS = 3  # times the message is played before the call gives up waiting for a key

SAY = {"language": "zh-CN"}
PROMPT_ZH = "确认收到请按1,无法响应请按2,重听请按9。"
PROMPT_EN = "Press 1 to confirm, 2 if you cannot respond, 9 to hear the message again."


# ------------------------------------------------------------------ signature


class Params(dict):
    """Form parameters with every value kept (RequestValidator signs repeated names too)."""

    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        super().__init__()
        for k, v in pairs:
            self.setdefault(k, []).append(v)

    def getlist(self, name: str) -> list[str]:
        return self[name]

    def one(self, name: str, default: str | None = None) -> str | None:
        return self[name][-1] if name in self else default


def public_url(settings: Settings, request: Request) -> str:
    """The URL Twilio requested: the configured public base, the path, the raw query."""
    query = request.url.query
    return settings.base_url + request.url.path + (f"?{query}" if query else "")


def signature_ok(settings: Settings, url: str, params: Params, signature: str) -> bool:
    tokens = [t.get_secret_value() for t in (settings.twilio_auth_token, settings.twilio_previous_auth_token)
              if t and t.get_secret_value()]
    for n, token in enumerate(tokens):
        try:
            valid = _signed(RequestValidator(token), url, params, signature)
        except (TypeError, ValueError, UnicodeError):  # whatever the SDK makes of odd input: not signed by Twilio
            valid = False
        if valid:
            if n:
                log.info("twilio webhook signed with the previous auth token", path=url.split("?")[0])
            return True
    return False


def _signed(validator: RequestValidator, url: str, params: dict | str, signature: str) -> bool:
    """The form's signature over the URL exactly as Twilio was given it, one HMAC; else the SDK's `validate`, which
    computes two (with and without the port) and checks a JSON body's hash (`validate` was 8 % of the API's samples
    under a burst of replies, bench/api_load.py --profile)."""
    if isinstance(params, dict) and compare(validator.compute_signature(url, params), signature):
        return True
    return validator.validate(url, params, signature)


FORM = "application/x-www-form-urlencoded"


async def verified_twilio(request: Request, settings: SettingsDep) -> Params:
    """The callback's form parameters, once its signature is checked against them.

    Twilio posts these callbacks as forms, always; any other body (JSON, XML, multipart) is
    refused with 415 before a signature is computed over it (the SDK's validator raised a
    TypeError on a JSON body: a 500 and a reset connection)."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    raw = await request.body()
    if ctype != FORM and (ctype or raw):
        raise HTTPException(415, detail=f"content type {ctype or '(none)'!r} is not accepted: Twilio's callbacks "
                                        f"are {FORM} / 只接受 Twilio 的表单回调")
    body = raw.decode("utf-8", errors="replace")
    url = public_url(settings, request)
    signature = request.headers.get("X-Twilio-Signature", "")
    params = Params(parse_qsl(body, keep_blank_values=True))
    if not signature or not signature_ok(settings, url, params, signature):
        log.warning("twilio webhook refused: bad or missing signature", path=request.url.path)
        raise HTTPException(403, detail="invalid or missing X-Twilio-Signature")
    return params


TwilioParams = Annotated[Params, Depends(verified_twilio)]


async def _temporal(request: Request) -> Client:
    client = await request.app.state.temporal()
    if client is None:
        raise HTTPException(503, detail="Temporal is not reachable; try again shortly")
    return client


# ------------------------------------------------------------------ the outbox row a callback is about


def _bind(outbox_id: str | None, sid: str) -> dict | None:
    """The message a callback is about; records the provider id if the send's result is not in yet."""
    with session_scope() as s:
        try:
            row = sent_message(s, outbox_id, sid)
        except NotOurs:
            return None  # the URL names another message
        if row is None:
            return None
        return {"id": row.id, "status": row.status, "channel": row.channel, "body": row.body, "to": row.to,
                "subject": row.subject, "person_id": row.person_id, "workflow_id": row.workflow_id,
                "voice_text": (row.meta or {}).get("voice_text") or row.body,
                "procedure": (row.meta or {}).get("procedure")}


async def _message(request: Request, sid: str | None) -> dict:
    if not sid:
        raise HTTPException(422, detail="the callback names no message (MessageSid/CallSid)")
    row = await asyncio.to_thread(_bind, request.query_params.get("o"), sid)
    if row is None:
        raise HTTPException(404, detail=f"no message sent by yingji with id {sid}")
    return row


async def _report(client: Client, sid: str, status: str, **kw) -> dict:
    try:
        return await gateway_report(client, sid, status, **kw)
    except AnswerError as exc:
        raise HTTPException(404, detail=str(exc)) from exc


def _record_opt_out(row: dict, sid: str) -> None:
    """Tell the duty desk: this person has unsubscribed, SMS cannot reach them until they send START."""
    with session_scope() as s:
        append(s, [NewEvent(subject=row["subject"] or "gateway", kind="gateway.opted_out", step_id=f"opted_out/{sid}",
                            workflow_id=row["workflow_id"], channel="sms",
                            payload={"person_id": row["person_id"], "to": mask_mobile(row["to"]), "outbox_id": row["id"],
                                     "error_code": int(OPTED_OUT),
                                     "note": "号码已退订短信(STOP),请改用电话联系 / the number unsubscribed (STOP)"})])


# ------------------------------------------------------------------ SMS


def _xml(twiml: object) -> Response:
    return Response(str(twiml), media_type="application/xml")


@router.post("/twilio/sms", summary="Inbound SMS (a reply to a call-out)")
async def inbound_sms(request: Request, params: TwilioParams) -> Response:
    """Stored first (api/services/answers/intake.py), then matched and given to the workflows; past capacity or
    with Temporal down the reply is answered as stored and processed after. A 503 only when it was not stored."""
    result = await request.app.state.intake.answer("sms", {
        "gateway": "twilio", "from": params.one("From", ""), "body": params.one("Body", ""),
        "provider_id": params.one("MessageSid") or params.one("SmsSid")})
    if result is not None and result.get("recorded") in ("late", "held"):  # the person hears what became of it
        reply = MessagingResponse()
        reply.message(result["message"])
        return _xml(reply)
    return _xml(NO_REPLY)


@router.post("/twilio/sms/status", summary="SMS delivery status")
async def sms_status(request: Request, params: TwilioParams) -> dict:
    sid = params.one("MessageSid") or params.one("SmsSid")
    raw, code = (params.one("MessageStatus") or params.one("SmsStatus") or "").lower(), params.one("ErrorCode")
    status = None if raw not in SMS_STATUS else "opted_out" if code == OPTED_OUT else SMS_STATUS[raw]
    detail = f"Twilio {raw} {code}" if code else None
    if sid and status not in (None, "opted_out"):
        # the common case in one transaction: the message found (and bound) by the URL's outbox id and its
        # status recorded together (two write transactions per callback before, queued on SQLite's lock)
        return await _report(await _temporal(request), sid, status, detail=detail, outbox_id=request.query_params.get("o"))
    row = await _message(request, sid)
    if status is None:
        return {"handled": "ignored", "status": raw}
    await asyncio.to_thread(_record_opt_out, row, sid)
    return await _report(await _temporal(request), sid, status, detail=detail)


# ------------------------------------------------------------------ voice


def _url(path: str, row: dict, n: int) -> str:
    return f"{get_settings().base_url}{TWILIO}/voice/{path}?{urlencode({'o': row['id'], 'n': n})}"


def _gather(row: dict, n: int, message: bool) -> VoiceResponse:
    """The message (or only the prompt) inside a one-key <Gather>; no key: the whole message again."""
    vr = VoiceResponse()
    g = vr.gather(num_digits=1, action=_url("gather", row, n), method="POST", timeout=8)
    if message:
        g.say(row["voice_text"], **SAY)
    g.say(PROMPT_ZH, **SAY)
    g.say(PROMPT_EN, language="en-US")
    if n + 1 < ROUNDS:
        vr.redirect(_url("twiml", row, n + 1), method="POST")
    else:
        vr.say("未收到按键,再见。", **SAY)
        vr.hangup()
    return vr


def _goodbye(zh: str, en: str) -> VoiceResponse:
    vr = VoiceResponse()
    vr.say(zh, **SAY)
    vr.say(en, language="en-US")
    vr.hangup()
    return vr


def _n(request: Request) -> int:
    n = request.query_params.get("n", "0")
    return int(n) if n.isdigit() else 0


@router.post("/twilio/voice/twiml", summary="TwiML for a call: the message and a keypress prompt")
async def voice_twiml(request: Request, params: TwilioParams) -> Response:
    sid = params.one("CallSid")
    row = await _message(request, sid)
    n = _n(request)
    if n >= ROUNDS:
        return _xml(_goodbye("未收到按键,再见。", "No key pressed. Goodbye."))
    answered_by = (params.one("AnsweredBy") or "").lower()
    if answered_by.startswith(("machine", "fax")):  # never an acknowledgement: report it and leave
        await _report(await _temporal(request), sid, "completed", answered_by=answered_by)
        vr = VoiceResponse()
        vr.say(row["voice_text"], **SAY)
        vr.hangup()
        return _xml(vr)
    if row.get("procedure") == "spotcheck":  # 六问: one key per question (api/routes/duty/ivr.py)
        vr = VoiceResponse()
        vr.redirect(f"{get_settings().base_url}{TWILIO}/spotcheck/twiml?{urlencode({'o': row['id']})}", method="POST")
        return _xml(vr)
    return _xml(_gather(row, n, message=True))


@router.post("/twilio/voice/gather", summary="Keypress: 1 confirm, 2 cannot respond, 9 repeat")
async def voice_gather(request: Request, params: TwilioParams) -> Response:
    sid = params.one("CallSid")
    row = await _message(request, sid)
    digits, n = (params.one("Digits") or "").strip(), _n(request)
    if digits in ("1", "2"):
        await _report(await _temporal(request), sid, "in-progress", digits=digits)
        if digits == "1":
            return _xml(_goodbye("已确认收到,谢谢。", "Confirmed. Thank you."))
        return _xml(_goodbye("已记录您无法响应,将立即通知其他负责人。", "Noted: you cannot respond. Others will be called now."))
    if n >= ROUNDS:
        return _xml(_goodbye("未收到有效按键,再见。", "No valid key. Goodbye."))
    return _xml(_gather(row, n, message=digits == "9"))  # 9: the message again; anything else: the prompt


@router.post("/twilio/voice/status", summary="Call progress and outcome, with AnsweredBy")
async def voice_status(request: Request, params: TwilioParams) -> dict:
    sid = params.one("CallSid")
    row = await _message(request, sid)
    status = (params.one("CallStatus") or "").lower()
    answered_by = (params.one("AnsweredBy") or "").lower() or None
    if status == "initiated":
        status = "queued"
    if row["status"] in FINAL:  # a keypress or the machine detection has said how it ended
        return {"handled": "already", "status": row["status"]}
    code = params.one("ErrorCode")
    return await _report(await _temporal(request), sid, status, answered_by=answered_by,
                         detail=f"Twilio {status} {code}" if code else None)


# ------------------------------------------------------------------ 应急广播 receipts


RECEIPT_STATUSES = ("played", "failed")


def _receipt_results(raw: bytes) -> tuple[str | None, str | None, list[dict[str, str]]]:
    """The receipt's task, request and results, or 422 naming what is wrong."""
    import json

    try:
        body = json.loads(raw)
    except ValueError:
        raise HTTPException(422, detail="the receipt is not JSON / 回执不是 JSON") from None
    if not isinstance(body, dict):
        raise HTTPException(422, detail="the receipt must be a JSON object")
    task_id, request_id, results = body.get("task_id"), body.get("request_id"), body.get("results")
    if not any(isinstance(v, str) and v for v in (task_id, request_id)):
        raise HTTPException(422, detail="the receipt names no task_id or request_id")
    if not isinstance(results, list) or not results or len(results) > 5000:
        raise HTTPException(422, detail="results: a list of 1 to 5000 {area, status} is required")
    out = []
    for n, r in enumerate(results):
        if not isinstance(r, dict) or not isinstance(r.get("area"), str) or not r["area"]:
            raise HTTPException(422, detail=f"results[{n}]: an object with an area is required")
        if r.get("status") not in RECEIPT_STATUSES:
            raise HTTPException(422, detail=f"results[{n}].status: {r.get('status')!r} is not played or failed")
        out.append({"area": r["area"][:100], "status": r["status"], "terminal": str(r.get("terminal") or "")[:100],
                    "error": str(r.get("error") or "")[:300]})
    return (task_id if isinstance(task_id, str) and task_id else None,
            request_id if isinstance(request_id, str) and request_id else None, out)


BROADCAST = signed_webhooks.Platform(name="broadcast", scheme=hmac_scheme.BROADCAST,
                                     secret_setting="YINGJI_BROADCAST_SECRET")


@router.post("/broadcast", summary="应急广播: the IP broadcast platform's receipts (HMAC-signed, replay window)")
async def broadcast_receipt(request: Request, settings: SettingsDep) -> dict:
    """Per terminal or area, played or failed. Signed like our requests (activities/gateways/broadcast.py):
    `X-Broadcast-Timestamp` within the replay window of our clock, `X-Broadcast-Signature` = HMAC-SHA256 of the
    timestamp and the body; a signature seen before is a replay. Anything else: 403, nothing recorded."""
    from store import broadcasts

    secret = settings.broadcast_secret.get_secret_value() if settings.broadcast_secret else ""
    raw = await request.body()
    window = settings.broadcast_replay_window_s
    try:
        sig = signed_webhooks.check(BROADCAST, secret, request.headers.get(BROADCAST.ts_header),
                                    request.headers.get(BROADCAST.sig_header), raw, window)
    except signed_webhooks.Unsigned as exc:
        log.warning("broadcast webhook refused", reason=str(exc))
        raise
    task_id, request_id, results = _receipt_results(raw)

    def record() -> dict:
        with session_scope() as s:  # the receipt and its signature taken together (a replay: 403, nothing recorded)
            signed_webhooks.take(s, BROADCAST, sig, window)
            try:
                row = broadcasts.record_receipts(s, task_id=task_id, request_id=request_id, results=results)
            except broadcasts.ReceiptError as exc:
                raise HTTPException(404, detail=str(exc)) from exc
            return {"recorded": len(results), "request_id": row.request_id, "subject": row.subject}

    try:
        return await asyncio.to_thread(record)
    except IntegrityError:  # the same signed request twice at once: the other one recorded it
        raise HTTPException(403, detail="replayed: this signed request was taken already") from None
