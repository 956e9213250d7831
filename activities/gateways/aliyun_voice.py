"""Aliyun voice 阿里云语音服务 through the official SDK (`alibabacloud-dyvmsapi20170525`).

Setting up (prefix ``YINGJI_``; docs/gateways.md): ``GATEWAY_VOICE=aliyun``, the AccessKey of SMS
(``ALIYUN_ACCESS_KEY_ID``/``_SECRET``, the RAM user also with AliyunDyvmsFullAccess), ``ALIYUN_VOICE_SHOW_NUMBER``
(the number bought for 语音通知 / 交互式语音应答), and the TTS templates of ``definitions/gateways/aliyun.yaml``
(``voice:``). In the console (语音服务 → 系统设置 → 回执消息配置, HTTP 批量推送) set 呼叫结果 VoiceReport to
``{PUBLIC_BASE_URL}/api/webhooks/aliyun/voice/report?token=…``, 交互式语音应答 IvrReport to ``…/voice/ivr?token=…``
and 呼叫中间状态 VoiceCallReport to ``…/voice/progress?token=…``.

- A call that wants an answer (the message has a reply code: 叫应, escalation) is an ``IvrCall``: the message
  (``ivr_start`` with the voice text), then keys: 1 confirms (``key_1`` is played), 2 cannot respond (``key_2``),
  9 plays the message again; no key: ``bye``. The key comes back by IvrReport (or VoiceCallReport 300000 with dtmf).
- Any other call is ``SingleCallByTts`` (``notice``), played twice.
- ``OutId`` is the outbox row's id, as for SMS: every push names the message by it.

Aliyun voice has no query by OutId (``QueryCallDetailByCallId`` needs the CallId the lost answer carried), so a
call whose answer never came (a timeout, a worker killed between the call and its record) is found only if one of
Aliyun's pushes has named it meanwhile (the push records the CallId on the row by OutId: `reconcile` reads it). If
none has, the call is reported as failed and never placed again (`resend_unknown = False`): the escalation moves
on to the next step, and a later push or key of that call is still recorded (every answer counts).
"""
from __future__ import annotations

import asyncio
import json

from alibabacloud_dyvmsapi20170525 import models as vms_models
from alibabacloud_dyvmsapi20170525.client import Client
from alibabacloud_tea_openapi.exceptions import ClientException, ServerException

from activities.gateways.aliyun_sms import (
    OK,
    failed_call,
    national,
    openapi_config,
    out_id,
    templates,
    throttled,
    transport,
    unanswered,
)
from activities.gateways.base import OutgoingMessage, SendResult, Throttled, provider_call

KEY_TIMEOUT_MS = 8000
IVR_PLAYS = 3  # the message is played up to three times while no key comes
NOTICE_PLAYS = 2


class AliyunVoiceGateway:
    name = "aliyun_voice"
    resend_unknown = False  # Aliyun cannot be asked by OutId: a call not found is not placed again

    def __init__(self, settings, *, tries: int = 4, backoff_s: float = 0.5) -> None:
        if not settings.aliyun_voice_show_number:
            raise ValueError("the aliyun voice gateway needs YINGJI_ALIYUN_VOICE_SHOW_NUMBER")
        self.timeout_s = 20.0
        self.client = Client(openapi_config(settings, settings.aliyun_voice_endpoint, self.timeout_s))
        self.account = f"aliyun:{settings.aliyun_access_key_id}"
        self.rate_per_s = {"voice": settings.aliyun_rate_voice_per_s} if settings.aliyun_rate_voice_per_s else None
        self.show_number = national(settings.aliyun_voice_show_number)
        self.voice = templates(settings).voice
        self.throttle_tries, self.throttle_backoff_s = tries, backoff_s

    def request(self, msg: OutgoingMessage):
        """IvrCall for a call that wants an answer, SingleCallByTts for a notice."""
        if msg.channel != "voice":
            raise ValueError(f"the aliyun voice gateway places calls, not {msg.channel!r}")
        text = msg.voice_text or msg.body
        v = self.voice
        if msg.reply_code:
            missing = [f for f in ("ivr_start", "key_1", "key_2", "bye") if not getattr(v, f)]
            if missing:
                raise ValueError(f"voice.{missing[0]} has no TTS template code (definitions/gateways/aliyun.yaml)")
            params = json.dumps({var: text for var in v.ivr_params}, ensure_ascii=False)
            keys = [vms_models.IvrCallRequestMenuKeyMap(key="1", code=v.key_1),
                    vms_models.IvrCallRequestMenuKeyMap(key="2", code=v.key_2),
                    vms_models.IvrCallRequestMenuKeyMap(key="9", code=v.ivr_start, tts_params=params)]
            return vms_models.IvrCallRequest(called_show_number=self.show_number, called_number=national(msg.to),
                                             start_code=v.ivr_start, start_tts_params=params, menu_key_map=keys,
                                             bye_code=v.bye, timeout=KEY_TIMEOUT_MS, play_times=IVR_PLAYS,
                                             out_id=out_id(msg))
        if not v.notice:
            raise ValueError("voice.notice has no TTS template code (definitions/gateways/aliyun.yaml)")
        return vms_models.SingleCallByTtsRequest(
            called_show_number=self.show_number, called_number=national(msg.to), tts_code=v.notice,
            tts_param=json.dumps({var: text for var in v.notice_params}, ensure_ascii=False),
            play_times=NOTICE_PLAYS, out_id=out_id(msg))

    def _call(self, req) -> str | None:
        resp = (self.client.ivr_call(req) if isinstance(req, vms_models.IvrCallRequest)
                else self.client.single_call_by_tts(req))
        body = resp.body
        if body.code != OK:
            raise _Refused(body.code, body.message)
        return body.call_id

    async def send(self, msg: OutgoingMessage) -> SendResult:
        req = self.request(msg)
        try:
            return SendResult(status="sent", provider_id=await provider_call(self._call, req))
        except _Refused as exc:
            if exc.code.startswith("Throttling"):
                raise Throttled(str(exc)) from exc
            return SendResult(status="failed", error=str(exc)[:500])
        except Exception as exc:  # noqa: BLE001 - sorted below: throttled, refused, or unknown
            if throttled(exc):
                raise Throttled(failed_call(exc)) from exc
            if isinstance(exc, ClientException):
                return SendResult(status="failed", error=failed_call(exc))
            if isinstance(exc, ServerException) or unanswered(exc):
                why = failed_call(exc) if isinstance(exc, ServerException) else f"Aliyun: no answer ({transport(exc)})"
                found = await self.reconcile(msg)
                return found or SendResult(status="failed", error=f"{why}; no push names the call: not placed again")
            return SendResult(status="failed", error=f"Aliyun unreachable: {transport(exc)}")

    async def reconcile(self, msg: OutgoingMessage) -> SendResult | None:
        """The CallId a push of Aliyun recorded on the message's row (found by OutId), if any."""
        return await asyncio.to_thread(_pushed, msg.outbox_id)


class _Refused(Exception):
    def __init__(self, code: str | None, message: str | None) -> None:
        self.code = str(code or "")
        super().__init__(f"Aliyun {code}: {message}")


def _pushed(outbox_id: int) -> SendResult | None:
    from store.db import session_scope
    from store.messages import OutboxMessage

    with session_scope(write=False) as s:
        row = s.get(OutboxMessage, outbox_id)
        if row is None or not row.provider_id:
            return None
        return SendResult(status="sent", provider_id=row.provider_id)
