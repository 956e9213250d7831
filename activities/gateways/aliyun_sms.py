"""Aliyun SMS 阿里云短信服务 through the official SDK (`alibabacloud-dysmsapi20170525`).

Setting up (environment variables, prefix ``YINGJI_``; docs/gateways.md in full):

- ``GATEWAY_SMS=aliyun`` (or ``GATEWAY=aliyun`` for SMS and voice), ``ALIYUN_ACCESS_KEY_ID`` and
  ``ALIYUN_ACCESS_KEY_SECRET`` (a RAM user with AliyunDysmsFullAccess), ``ALIYUN_SMS_SIGN_NAME`` (the approved
  signature 短信签名).
- Aliyun sends approved templates only: ``definitions/gateways/aliyun.yaml`` names each message kind's template
  code and which of the message's values fill its variables; ``yingji definitions check`` refuses a kind without
  one. A drill (【演练】) goes as the ``notice`` kind, its whole text with the mark in one variable.
- Receipts and replies come by Aliyun's HTTP push (api/routes/webhooks_aliyun.py): in the console (短信服务 → 通用设置
  → 订阅HTTP回执) set 短信发送状态 SmsReport to ``{PUBLIC_BASE_URL}/api/webhooks/aliyun/sms/report?token=…`` and
  上行短信 SmsUp to ``…/api/webhooks/aliyun/sms/up?token=…`` with ``ALIYUN_CALLBACK_TOKEN``.

What each send does: ``SendSms`` with the kind's template code, its parameters as JSON, and ``OutId`` = the outbox
row of the message's idempotency key (its id: every receipt names it back, and ``QuerySendDetails`` lists it). A
request whose answer never came (timeout, 5xx) is settled by asking ``QuerySendDetails`` for the number and the
day whether a message with that OutId exists, never by sending again blindly; so is a row a killed worker left at the
gateway (`reconcile`). API throttling (``Throttling.*``, HTTP 429/503 with a retry time) raises ``Throttled``;
``isv.BUSINESS_LIMIT_CONTROL`` (the number's own daily/minute limit) is a failure: sending again soon fails too, so
the escalation moves on to the next channel. SDK calls block, so they run on threads.
"""
from __future__ import annotations

import asyncio
import json
import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from alibabacloud_dysmsapi20170525 import models as sms_models
from alibabacloud_dysmsapi20170525.client import Client
from alibabacloud_tea_openapi import models as openapi_models
from alibabacloud_tea_openapi.exceptions import ClientException, ServerException, ThrottlingException

from activities.gateways.base import OutgoingMessage, SendResult, Throttled, provider_call

CHINA = ZoneInfo("Asia/Shanghai")  # Aliyun's SendDate is the day in China
DRILL_MARK = "【演练】"
LINK = re.compile(r"https?://\S+")
OK = "OK"


def openapi_config(settings, endpoint: str, timeout_s: float) -> openapi_models.Config:
    """The SDK's client configuration for one Aliyun product (SMS, voice)."""
    secret = settings.aliyun_access_key_secret.get_secret_value() if settings.aliyun_access_key_secret else None
    if not (settings.aliyun_access_key_id and secret):
        raise ValueError("the aliyun gateway needs YINGJI_ALIYUN_ACCESS_KEY_ID and _ACCESS_KEY_SECRET")
    return openapi_models.Config(access_key_id=settings.aliyun_access_key_id, access_key_secret=secret,
                                 endpoint=endpoint, protocol=settings.aliyun_protocol,
                                 connect_timeout=int(min(timeout_s, 10) * 1000), read_timeout=int(timeout_s * 1000))


def national(number: str) -> str:
    """A number as Aliyun takes it: mainland numbers without +86, others with their country code, no +."""
    n = number.strip().replace(" ", "")
    if n.startswith("+86"):
        return n[3:]
    return n[1:] if n.startswith("+") else n


def e164(number: str) -> str:
    """A number from Aliyun's push (13800000000, 8613800000000) as the directory keeps it (+8613800000000)."""
    n = number.strip()
    if n.startswith("+"):
        return n
    if len(n) == 11 and n.startswith("1"):
        return "+86" + n
    return "+" + n


def out_id(msg: OutgoingMessage) -> str:
    """The OutId of a message: its outbox row's id (the one row of its idempotency key; Aliyun's OutId is short)."""
    return str(msg.outbox_id)


def templates(settings):
    """The Aliyun templates of the definitions (definitions/gateways/aliyun.yaml)."""
    from definitions.loader import cached_library

    loaded = cached_library(settings.definitions_dir).templates("aliyun")
    if loaded is None:
        raise ValueError(f"no Aliyun templates in {settings.definitions_dir}/gateways (yingji definitions check)")
    return loaded.model


def values(msg: OutgoingMessage, text: str) -> dict[str, str]:
    links = LINK.findall(msg.body)
    return {"text": text, "code": msg.reply_code or "", "link": links[-1] if links else "", **(msg.values or {})}


def failed_call(exc: Exception) -> str:
    return f"Aliyun {getattr(exc, 'code', None) or type(exc).__name__}: {getattr(exc, 'message', None) or exc}"[:500]


def transport(exc: Exception) -> str:
    """What went wrong on the way to Aliyun, in a few words (the SDK's own message quotes the whole request URL,
    the number and the text with it: never recorded)."""
    text = str(exc)
    for needle, words in (("refused", "connection refused"), ("ConnectTimeout", "connect timeout"),
                          ("ReadTimeout", "read timeout"), ("Read timed out", "read timeout"),
                          ("NewConnectionError", "no connection"), ("RemoteDisconnected", "connection closed")):
        if needle in text:
            return words
    return type(exc).__name__


def unanswered(exc: Exception) -> bool | None:
    """For an error of the SDK's transport: True when the request may have reached Aliyun (a timeout while
    reading), False when it surely did not (refused, connect timeout), None when it is not a transport error."""
    if isinstance(exc, ClientException | ServerException | ThrottlingException):
        return None
    text = str(exc)
    if "ConnectTimeout" in text or "refused" in text.lower() or "NewConnectionError" in text:
        return False
    return True


def throttled(exc: Exception) -> bool:
    return isinstance(exc, ThrottlingException) or str(getattr(exc, "code", "")).startswith("Throttling")


class AliyunSmsGateway:
    name = "aliyun_sms"
    resend_unknown = True  # reconcile's None is Aliyun's own list of the day's messages to the number: sending is safe

    def __init__(self, settings, *, tries: int = 4, backoff_s: float = 0.5) -> None:
        if not settings.aliyun_sms_sign_name:
            raise ValueError("the aliyun SMS gateway needs YINGJI_ALIYUN_SMS_SIGN_NAME (the approved signature)")
        self.timeout_s = 20.0
        self.client = Client(openapi_config(settings, settings.aliyun_sms_endpoint, self.timeout_s))
        self.account = f"aliyun:{settings.aliyun_access_key_id}"
        self.rate_per_s = {"sms": settings.aliyun_rate_sms_per_s} if settings.aliyun_rate_sms_per_s else None
        self.sign_name = settings.aliyun_sms_sign_name
        self.templates = templates(settings)
        self.throttle_tries, self.throttle_backoff_s = tries, backoff_s

    def request(self, msg: OutgoingMessage) -> sms_models.SendSmsRequest:
        """The SendSms request: the kind's approved template and its parameters (a drill: the notice, whole text)."""
        if msg.channel != "sms":
            raise ValueError(f"the aliyun SMS gateway sends sms, not {msg.channel!r}")
        kind = msg.kind if msg.kind in self.templates.sms and not msg.body.startswith(DRILL_MARK) else "notice"
        spec = self.templates.sms.get(kind)
        if spec is None or not spec.template_code:
            raise ValueError(f"message kind {kind!r} has no Aliyun template code (definitions/gateways/aliyun.yaml)")
        have = values(msg, msg.body)
        params = {var: have.get(source, "") for var, source in spec.params.items()}
        return sms_models.SendSmsRequest(phone_numbers=national(msg.to), sign_name=self.sign_name,
                                         template_code=spec.template_code,
                                         template_param=json.dumps(params, ensure_ascii=False), out_id=out_id(msg))

    # ------------------------------------------------------------------ send

    async def send(self, msg: OutgoingMessage) -> SendResult:
        req = self.request(msg)
        try:
            resp = await provider_call(self.client.send_sms, req)
        except Exception as exc:  # noqa: BLE001 - sorted below: throttled, refused, or unknown
            if throttled(exc):
                raise Throttled(failed_call(exc)) from exc  # nothing was created: sending again is safe
            if isinstance(exc, ServerException):
                return await self._settle(msg, failed_call(exc))
            if isinstance(exc, ClientException):
                return SendResult(status="failed", error=failed_call(exc))
            if unanswered(exc):
                return await self._settle(msg, f"Aliyun: no answer ({transport(exc)})")
            return SendResult(status="failed", error=f"Aliyun unreachable: {transport(exc)}")
        body = resp.body
        if body.code != OK:
            if str(body.code).startswith("Throttling"):
                raise Throttled(f"Aliyun {body.code}: {body.message}")
            return SendResult(status="failed", error=f"Aliyun {body.code}: {body.message}"[:500])
        return SendResult(status="sent", provider_id=body.biz_id)

    async def _settle(self, msg: OutgoingMessage, why: str) -> SendResult:
        """The request may or may not have reached Aliyun: ask, rather than send again."""
        try:
            found = await self.reconcile(msg)
        except Exception as exc:  # noqa: BLE001 - reported as the message's outcome
            return SendResult(status="failed", error=f"{why}; and Aliyun could not be asked: {type(exc).__name__}")
        return found or SendResult(status="failed", error=f"{why}; Aliyun has no such SMS")

    # ------------------------------------------------------------------ reconcile

    async def reconcile(self, msg: OutgoingMessage) -> SendResult | None:
        """What Aliyun holds of this message: QuerySendDetails for the number on the day it was claimed (and the
        next, around midnight), matched by OutId. Aliyun lists no BizId there: the provider id on record is then
        `aliyun-out:<outbox id>`, and the receipts find the message by its OutId."""
        since = (msg.created_at or datetime.now(UTC)).astimezone(CHINA)
        days = sorted({since.strftime("%Y%m%d"), (since + timedelta(minutes=5)).strftime("%Y%m%d"),
                       datetime.now(CHINA).strftime("%Y%m%d")})
        for day in days:
            for d in await asyncio.to_thread(self._details, msg, day):
                if str(d.out_id or "") != out_id(msg):
                    continue
                provider_id = f"aliyun-out:{out_id(msg)}"
                if d.send_status == 2:
                    return SendResult(status="failed", provider_id=provider_id, error=f"Aliyun {d.err_code}")
                return SendResult(status="sent", provider_id=provider_id)
        return None

    def _details(self, msg: OutgoingMessage, day: str) -> list:
        out, page = [], 1
        while True:
            resp = self.client.query_send_details(sms_models.QuerySendDetailsRequest(
                phone_number=national(msg.to), send_date=day, page_size=50, current_page=page))
            body = resp.body
            if body.code != OK:
                raise RuntimeError(f"Aliyun QuerySendDetails {body.code}: {body.message}")
            found = (body.sms_send_detail_dtos.sms_send_detail_dto or []) if body.sms_send_detail_dtos else []
            out.extend(found)
            if len(found) < 50 or page >= 20:
                return out
            page += 1
