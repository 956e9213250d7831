"""Aliyun's HTTP pushes (HTTP 批量推送): SMS receipts and replies, call results, keys. No bearer token.

Aliyun pushes a JSON array of reports to the URL configured in its console, unsigned: what is checked is the
shared token in that URL, `?token=<YINGJI_ALIYUN_CALLBACK_TOKEN>` (compared in constant time; unset: every push
is refused). Without it, or with another: 403 and nothing reaches a workflow. Keep the URL as secret as the
token; serve it over https only. Each report then names its message by `out_id` (the outbox row's id, given as
OutId when it was sent): a report whose out_id is not a message sent through Aliyun, or whose call id is another
call's, is skipped (counted in the answer), never applied to some other message.

- `POST /api/webhooks/aliyun/sms/report` SmsReport: `success` true → delivered; false → undelivered with Aliyun's
  err_code (the escalation moves on at once).
- `POST /api/webhooks/aliyun/sms/up` SmsUp: a reply; `1`, `收到`, the reply code… acknowledge through the same
  service as Twilio's inbound SMS (api/services/answers), once per `sequence_id`.
- `POST /api/webhooks/aliyun/voice/report` VoiceReport (呼叫结果): 200002 busy, 200003 no answer, 200010 powered off
  (关机), 200011 停机, 200004/200005/200007… failed; keys in `dtmf` count. A call that asks for a key (IvrCall) that
  ended without one waits for its IvrReport, which says so.
- `POST /api/webhooks/aliyun/voice/ivr` IvrReport: key 1 acknowledges, 2 "cannot respond" (moves on at once), none
  is "no key" (moves on, as after no answer).
- `POST /api/webhooks/aliyun/voice/progress` VoiceCallReport (呼叫中间状态): names the call on its message early (so a
  worker killed while placing it finds it), and 300000 with dtmf is a key.

Answer: `{"code": 0, "msg": "成功"}` (what Aliyun expects; anything else and it pushes again). Temporal unreachable: 503.
"""
from __future__ import annotations

import asyncio
import hmac
import json
from collections import Counter
from typing import Any

import structlog
from fastapi import APIRouter, HTTPException, Request
from activities.gateways.aliyun_sms import e164
from api.deps import SettingsDep
from api.services.answers import AnswerError, gateway_report
from config import Settings
from store.db import session_scope
from store.messages import OutboxMessage

log = structlog.get_logger("yingji.webhooks")
router = APIRouter(prefix="/api/webhooks/aliyun", tags=["gateway webhooks"])
MAX_ITEMS = 1000
FINAL = {"answered", "declined", "machine"}  # a call whose outcome is known already
VOICE_STATUS = {  # Aliyun's 呼叫状态码 -> the gateway status of api/services/answers (detail: Aliyun's words)
    "200000": ("completed", "用户听完语音"), "200001": ("completed", "用户提前挂机"), "200002": ("busy", "用户占线"),
    "200003": ("no-answer", "用户未接听"), "200004": ("failed", "号码不合法"), "200005": ("failed", "被叫无法接通"),
    "200006": ("failed", "语音播放失败"), "200007": ("failed", "不在服务区"), "200008": ("completed", "获取按键超时"),
    "200010": ("failed", "关机"), "200011": ("failed", "停机"), "200121": ("failed", "呼叫超并发"),
}
OK = {"code": 0, "msg": "成功"}


def _token_ok(settings: Settings, request: Request) -> None:
    expected = settings.aliyun_callback_token.get_secret_value() if settings.aliyun_callback_token else ""
    given = request.query_params.get("token", "")
    if not expected or not given or not hmac.compare_digest(given.encode(), expected.encode()):
        log.warning("aliyun push refused: bad or missing token", path=request.url.path)
        raise HTTPException(403, detail="回执推送令牌无效 / invalid or missing token")


async def _items(request: Request, settings: Settings) -> list[dict[str, Any]]:
    _token_ok(settings, request)
    try:
        body = json.loads(await request.body())
    except ValueError:
        raise HTTPException(422, detail="推送内容不是 JSON / the push is not JSON") from None
    if isinstance(body, dict):
        body = [body]
    if not isinstance(body, list) or not body or len(body) > MAX_ITEMS:
        raise HTTPException(422, detail=f"推送内容须为1至{MAX_ITEMS}条回执的 JSON 数组 / a JSON array of 1 to {MAX_ITEMS} reports is required")
    for n, item in enumerate(body):
        if not isinstance(item, dict):
            raise HTTPException(422, detail=f"第{n + 1}条回执不是 JSON 对象 / [{n}]: each report is a JSON object")
    return body


async def _temporal(request: Request):
    client = await request.app.state.temporal()
    if client is None:
        raise HTTPException(503, detail="系统繁忙,请稍后重试 / Temporal is not reachable; try again shortly")
    return client


def _bind(out_id: Any, provider_id: str | None, channel: str) -> dict | None:
    """The message a report is about (by OutId, sent through Aliyun on `channel`); records the provider id if the
    send's result is not in yet (or was lost: a killed worker). None: not ours, or another call's."""
    out = str(out_id or "")
    if not out.isdigit() or len(out) > 15:
        return None
    with session_scope() as s:
        row = s.get(OutboxMessage, int(out))
        if row is None or not row.gateway.startswith("aliyun") or row.channel != channel:
            return None
        if row.provider_id is None and provider_id:
            row.provider_id = provider_id
        elif provider_id and row.provider_id != provider_id and not row.provider_id.startswith("aliyun-out:"):
            return None  # the report names another message or call
        if row.provider_id is None:
            return None
        return {"id": row.id, "provider_id": row.provider_id, "status": row.status, "reply_code": row.reply_code}


async def _report(client, row: dict, status: str, **kw) -> str:
    try:
        return (await gateway_report(client, row["provider_id"], status, **kw)).get("handled", "?")
    except AnswerError as exc:
        log.info("aliyun report not applied", reason=str(exc))
        return "unmatched"


def _key(dtmf: Any) -> str | None:
    """The answer among the keys pressed: the first 1 or 2 (9 only replays the message)."""
    return next((k for k in str(dtmf or "") if k in "12"), None)


def _tally(results: list[str]) -> dict:
    return {**OK, "handled": dict(Counter(results))}


# ------------------------------------------------------------------ SMS


@router.post("/sms/report", summary="Aliyun SmsReport: delivery receipts (token in the URL)")
async def sms_report(request: Request, settings: SettingsDep) -> dict:
    items = await _items(request, settings)
    client = await _temporal(request)
    results = []
    for item in items:
        row = await asyncio.to_thread(_bind, item.get("out_id"), str(item.get("biz_id") or "") or None, "sms")
        if row is None:
            results.append("unknown")
            continue
        if item.get("success") in (True, "true", "True", 1):
            results.append(await _report(client, row, "delivered"))
        else:
            code, text = str(item.get("err_code") or "")[:40], str(item.get("err_msg") or "")[:100]
            results.append(await _report(client, row, "undelivered", detail=f"Aliyun {code} {text}".strip()))
    return _tally(results)


@router.post("/sms/up", summary="Aliyun SmsUp: replies from persons' phones (token in the URL)")
async def sms_up(request: Request, settings: SettingsDep) -> dict:
    items = await _items(request, settings)
    intake = request.app.state.intake  # stored first, then matched (api/services/answers/intake.py)
    answers = []
    for item in items:
        phone, content = str(item.get("phone_number") or ""), str(item.get("content") or "")
        seq = item.get("sequence_id")
        answers.append(None if not phone else intake.answer("sms", {
            "gateway": "aliyun", "from": e164(phone)[:20], "body": content[:2000],
            "provider_id": f"aliyun-up:{seq}" if seq not in (None, "") else None}))
    found = await asyncio.gather(*(a for a in answers if a is not None))  # one commit for the whole push
    it = iter(found)
    return _tally(["no number" if a is None else str((next(it) or {"handled": "stored"}).get("handled"))
                   for a in answers])


# ------------------------------------------------------------------ voice


async def _voice(client, item: dict, *, ivr: bool) -> str:
    row = await asyncio.to_thread(_bind, item.get("out_id"), str(item.get("call_id") or "") or None, "voice")
    if row is None:
        return "unknown"
    if row["status"] in FINAL:  # a key has said how it ended
        return "already"
    key = _key(item.get("dtmf"))
    if key is not None:
        return await _report(client, row, "in-progress", digits=key)
    code = str(item.get("status_code") or "")
    status, words = VOICE_STATUS.get(code, ("failed" if code.startswith("2") else "", str(item.get("status_msg") or "")))
    if not status:
        return "ignored"
    if status == "completed" and row["reply_code"] and not ivr:
        return "waiting for the IvrReport"  # an IvrCall's keys (or none) are the IvrReport's to say
    detail = None if status == "completed" else f"Aliyun {code} {words}".strip()
    return await _report(client, row, status, detail=detail)


@router.post("/voice/report", summary="Aliyun VoiceReport: call results (token in the URL)")
async def voice_report(request: Request, settings: SettingsDep) -> dict:
    items = await _items(request, settings)
    client = await _temporal(request)
    return _tally([await _voice(client, item, ivr=False) for item in items])


@router.post("/voice/ivr", summary="Aliyun IvrReport: keys pressed in a 叫应 call (token in the URL)")
async def voice_ivr(request: Request, settings: SettingsDep) -> dict:
    items = await _items(request, settings)
    client = await _temporal(request)
    return _tally([await _voice(client, item, ivr=True) for item in items])


@router.post("/voice/progress", summary="Aliyun VoiceCallReport: a call's intermediate states (token in the URL)")
async def voice_progress(request: Request, settings: SettingsDep) -> dict:
    items = await _items(request, settings)
    results = []
    client = None
    for item in items:
        if str(item.get("status_code")) == "300000" and _key(item.get("dtmf")):
            client = client or await _temporal(request)
            results.append(await _voice(client, item, ivr=True))
            continue
        row = await asyncio.to_thread(_bind, item.get("out_id"), str(item.get("call_id") or "") or None, "voice")
        results.append("progress" if row is not None else "unknown")
    return _tally(results)

