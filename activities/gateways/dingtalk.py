"""DingTalk work notifications 钉钉工作通知: a personal message to one person, with its read status.

Its HTTP API (oapi; the ``alibabacloud-dingtalk`` SDK covers the newer api.dingtalk.com, not the work
notification with its read list), all JSON:

- ``GET {DINGTALK_API_BASE}/gettoken?appkey=…&appsecret=…`` → ``access_token`` (valid ``expires_in`` s, 7200);
  kept until a minute before it expires, fetched again on errcode 40014/42001 (invalid, expired).
- ``POST /topapi/message/corpconversation/asyncsend_v2?access_token=…`` ``{agent_id, userid_list, msg}`` →
  ``task_id``. A message that wants an answer is an ``action_card`` whose one button (确认收到) is the person's
  signed acknowledgement link; any other is ``text``. The provider id is ``dingtalk:<task_id>:<userid>``.
- ``POST /topapi/message/corpconversation/getsendresult`` ``{agent_id, task_id}`` → ``read_user_id_list``,
  ``unread_user_id_list``, ``invalid_user_id_list``, ``forbidden_user_id_list``, ``failed_user_id_list``.
  `read_status` asks it for the notifications of the last day (api/services/dingtalk_reads.py, every
  ``DINGTALK_READ_POLL_S``): 已读 is recorded as **delivered**, never as an acknowledgement (the button is, or a
  reply); an invalid, forbidden or failed userid as undelivered (the escalation moves on).

Setting up (docs/gateways.md): an internal app (企业内部应用) in the DingTalk developer console with the permission
企业内消息通知 (work notifications), its AppKey, AppSecret and AgentId in ``DINGTALK_APP_KEY``, ``_APP_SECRET``,
``_AGENT_ID``; ``GATEWAY_IM=dingtalk``; each person's userid as ``dingtalk_user_id`` in the directory.

Idempotency: DingTalk delivers a work notification of the same content to the same person from the same app once
a day, and has no query by our key. So a send whose answer was lost is sent again as it was first rendered
(the outbox keeps the text): DingTalk drops the copy, the person sees it once (`resend_unknown`).
"""
from __future__ import annotations

import asyncio
import time

import httpx

from activities.gateways.base import OutgoingMessage, SendResult, Throttled

TOKEN_ERRORS = {40014, 42001}  # invalid / expired access_token: fetch a new one and try once more
FLOW_CONTROL = {90002, 90018}  # DingTalk's flow-control codes: sending again later is safe
BUTTON = "确认收到"


def card(msg: OutgoingMessage) -> dict:
    """The work notification: an action card whose button is the signed link, or plain text."""
    if msg.ack_url:
        title = msg.body.split("\n", 1)[0][:60]
        return {"msgtype": "action_card",
                "action_card": {"title": title, "markdown": msg.body, "single_title": BUTTON, "single_url": msg.ack_url}}
    return {"msgtype": "text", "text": {"content": msg.body}}


def parse_id(provider_id: str) -> tuple[str, str] | None:
    """(task_id, userid) of a provider id `dingtalk:<task_id>:<userid>`."""
    parts = provider_id.split(":", 2)
    return (parts[1], parts[2]) if len(parts) == 3 and parts[0] == "dingtalk" else None


class DingTalkError(Exception):
    def __init__(self, errcode: int, errmsg: str) -> None:
        self.errcode = errcode
        super().__init__(f"DingTalk errcode {errcode}: {errmsg}"[:300])


class DingTalkGateway:
    name = "dingtalk"
    resend_unknown = True  # DingTalk delivers the same content to the same person once a day: see the docstring

    def __init__(self, settings, *, timeout_s: float = 10.0, tries: int = 4, backoff_s: float = 0.5) -> None:
        secret = settings.dingtalk_app_secret.get_secret_value() if settings.dingtalk_app_secret else None
        if not (settings.dingtalk_app_key and secret and settings.dingtalk_agent_id):
            raise ValueError("the dingtalk gateway needs YINGJI_DINGTALK_APP_KEY, _APP_SECRET and _AGENT_ID")
        self.base = settings.dingtalk_api_base.rstrip("/")
        self.app_key, self.secret, self.agent_id = settings.dingtalk_app_key, secret, int(settings.dingtalk_agent_id)
        self.account = f"dingtalk:{settings.dingtalk_app_key}"
        self.timeout_s = timeout_s
        self.throttle_tries, self.throttle_backoff_s = tries, backoff_s
        self._token: tuple[str, float] | None = None  # (token, monotonic time it is no longer used after)
        self._lock: tuple[asyncio.AbstractEventLoop, asyncio.Lock] | None = None

    async def _access_token(self, http: httpx.AsyncClient, fresh: bool = False) -> str:
        loop = asyncio.get_running_loop()
        if self._lock is None or self._lock[0] is not loop:
            self._lock = (loop, asyncio.Lock())
        stale = self._token[0] if fresh and self._token else None
        async with self._lock[1]:  # sends running together fetch one token, not one each
            if self._token and self._token[0] != stale and time.monotonic() < self._token[1]:
                return self._token[0]
            return await self._fetch_token(http)

    async def _fetch_token(self, http: httpx.AsyncClient) -> str:
        r = await http.get(f"{self.base}/gettoken", params={"appkey": self.app_key, "appsecret": self.secret})
        answer = r.json()
        if answer.get("errcode", 0) != 0 or not answer.get("access_token"):
            raise DingTalkError(int(answer.get("errcode", r.status_code)), str(answer.get("errmsg", r.text)))
        self._token = (answer["access_token"], time.monotonic() + max(int(answer.get("expires_in", 7200)) - 60, 1))
        return self._token[0]

    async def _call(self, http: httpx.AsyncClient, path: str, body: dict) -> dict:
        """POST to the oapi with the access token (fetched again once if DingTalk says it is stale)."""
        for fresh in (False, True):
            token = await self._access_token(http, fresh=fresh)
            r = await http.post(f"{self.base}{path}", params={"access_token": token}, json=body)
            answer = r.json() if r.headers.get("content-type", "").startswith("application/json") else {}
            code = int(answer.get("errcode", 0 if r.is_success else r.status_code))
            if code in TOKEN_ERRORS and not fresh:
                continue
            if code != 0:
                raise DingTalkError(code, str(answer.get("errmsg", r.text)))
            return answer
        raise AssertionError("unreachable")

    async def send(self, msg: OutgoingMessage) -> SendResult:
        if msg.channel != "im":
            raise ValueError(f"the dingtalk gateway sends im, not {msg.channel!r}")
        if not msg.to:
            return SendResult(status="failed", error="no DingTalk userid for this person (directory dingtalk_user_id)")
        body = {"agent_id": self.agent_id, "userid_list": msg.to, "to_all_user": False, "msg": card(msg)}
        try:
            async with httpx.AsyncClient(timeout=self.timeout_s) as http:
                answer = await self._call(http, "/topapi/message/corpconversation/asyncsend_v2", body)
        except DingTalkError as exc:
            if exc.errcode in FLOW_CONTROL:
                raise Throttled(str(exc)) from exc
            return SendResult(status="failed", error=str(exc))
        except (httpx.HTTPError, ValueError) as exc:
            return SendResult(status="failed", error=f"DingTalk unreachable: {type(exc).__name__}")
        return SendResult(status="sent", provider_id=f"dingtalk:{answer['task_id']}:{msg.to}")

    async def reconcile(self, msg: OutgoingMessage) -> SendResult | None:
        return None  # nothing to ask by our key; sending the same text again is dropped by DingTalk (docstring)

    async def read_status(self, provider_ids: list[str]) -> dict[str, str]:
        """What became of these notifications: {provider id: delivered (已读) | undelivered}; unread ones are left out."""
        tasks: dict[str, list[tuple[str, str]]] = {}
        for pid in provider_ids:
            parsed = parse_id(pid)
            if parsed:
                tasks.setdefault(parsed[0], []).append((pid, parsed[1]))
        out: dict[str, str] = {}
        async with httpx.AsyncClient(timeout=self.timeout_s) as http:
            for task_id, ours in tasks.items():
                answer = await self._call(http, "/topapi/message/corpconversation/getsendresult",
                                          {"agent_id": self.agent_id, "task_id": int(task_id)})
                result = answer.get("send_result") or {}
                read = set(result.get("read_user_id_list") or [])
                lost = set().union(*(result.get(k) or [] for k in ("invalid_user_id_list", "forbidden_user_id_list",
                                                                 "failed_user_id_list")))
                for pid, user in ours:
                    if user in read:
                        out[pid] = "delivered"
                    elif user in lost:
                        out[pid] = "undelivered"
        return out
