"""IM robot: a JSON webhook in the DingTalk / WeCom group-robot style.

``YINGJI_IM_WEBHOOK_URL`` is the robot's URL (DingTalk
``https://oapi.dingtalk.com/robot/send?access_token=…``, WeCom
``https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=…``); with
``YINGJI_IM_WEBHOOK_SECRET`` (DingTalk's "加签" secret, SEC…) every request carries
``timestamp`` (ms) and ``sign`` = base64(HMAC-SHA256(secret, f"{timestamp}\\n{secret}")).

A message that wants an answer is an action card whose one button is the person's signed
acknowledgement link; the person is @-mentioned by their IM id otherwise. A robot has
no delivery receipts and no query API: what it says at once is all there is.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import time
from urllib.parse import urlencode

import httpx

from activities.gateways.base import OutgoingMessage, SendResult


def dingtalk_sign(secret: str, timestamp_ms: int) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp_ms}\n{secret}".encode(), hashlib.sha256)
    return base64.b64encode(mac.digest()).decode()


def payload(msg: OutgoingMessage) -> dict:
    title = msg.body.split("\n", 1)[0][:60]
    if msg.ack_url:
        return {"msgtype": "actionCard",
                "actionCard": {"title": title, "text": msg.body, "btnOrientation": "0",
                               "singleTitle": "确认收到", "singleURL": msg.ack_url}}
    return {"msgtype": "markdown", "markdown": {"title": title, "text": f"{msg.body}\n\n@{msg.to}"},
            "at": {"atUserIds": [msg.to], "isAtAll": False}}


class ImRobotGateway:
    name = "im"
    resend_unknown = False  # a robot cannot be asked what it posted

    def __init__(self, settings, *, timeout_s: float = 10.0) -> None:
        if not settings.im_webhook_url:
            raise ValueError("the IM robot gateway needs YINGJI_IM_WEBHOOK_URL")
        self.url = settings.im_webhook_url
        self.secret = settings.im_webhook_secret.get_secret_value() if settings.im_webhook_secret else None
        self.account = "im:" + httpx.URL(self.url).host
        self.timeout_s = timeout_s

    def signed_url(self, now_ms: int | None = None) -> str:
        if not self.secret:
            return self.url
        ts = now_ms or int(time.time() * 1000)
        sep = "&" if "?" in self.url else "?"
        return f"{self.url}{sep}{urlencode({'timestamp': ts, 'sign': dingtalk_sign(self.secret, ts)})}"

    async def send(self, msg: OutgoingMessage) -> SendResult:
        try:
            async with httpx.AsyncClient(timeout=self.timeout_s) as http:
                resp = await http.post(self.signed_url(), json=payload(msg))
        except httpx.HTTPError as exc:
            return SendResult(status="failed", error=f"IM robot unreachable: {type(exc).__name__}")
        try:
            answer = resp.json()
        except ValueError:
            answer = {}
        errcode = answer.get("errcode", 0 if resp.is_success else resp.status_code)
        if not resp.is_success or errcode != 0:
            return SendResult(status="failed", error=f"IM robot HTTP {resp.status_code} errcode {errcode}: "
                                                     f"{str(answer.get('errmsg', resp.text))[:200]}")
        return SendResult(status="sent", provider_id=f"IM{msg.outbox_id}")

    async def reconcile(self, msg: OutgoingMessage) -> SendResult | None:
        return None
