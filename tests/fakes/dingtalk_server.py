"""A local fake of DingTalk's oapi for work notifications 工作通知 (activities/gateways/dingtalk.py talks to it).

`GET /gettoken` checks the AppKey and AppSecret and hands out an access token (expiring on demand: `expire_tokens`);
`POST /topapi/message/corpconversation/asyncsend_v2` checks the token and the AgentId, records the notification
and, as DingTalk does, delivers the same content to the same person from the app once a day (`day`; a copy gets a task id
and reaches nobody: `delivered` counts what persons received); `getsendresult` answers each task's read, unread
and invalid userids. The test plays the persons: `read(task, userid)`. `fail_next(n, errcode)` answers errors.
`hold_sends(after)`: the `after`-th send from now is taken (recorded, delivered as DingTalk would) and its answer,
with those of any sends after it, kept until the hold is released — the sender left between sending and hearing
back, for as long as a test needs (to kill it there).
"""
from __future__ import annotations

import asyncio
import threading
import uuid
from collections import deque
from dataclasses import dataclass, field
from datetime import date, datetime
from zoneinfo import ZoneInfo

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.fakes.local_server import LocalServer
from tests.helpers import free_port


@dataclass
class Notification:
    task_id: int
    userid: str
    msg: dict
    delivered: bool  # False: the same content reached this person today already
    read: bool = False

    @property
    def button(self) -> str | None:
        return (self.msg.get("action_card") or {}).get("single_url")


@dataclass
class Hold:
    at: int  # the count of sends taken at which holding begins
    held: list[Notification] = field(default_factory=list)
    reached: threading.Event = field(default_factory=threading.Event)
    released: threading.Event = field(default_factory=threading.Event)

    async def wait(self, timeout: float) -> None:
        if not await asyncio.to_thread(self.reached.wait, timeout):
            raise AssertionError(f"no send number {self.at} within {timeout:.0f} s (the hold was never reached)")

    def release(self) -> None:
        self.released.set()


@dataclass
class FakeDingTalk(LocalServer):
    app_key: str = "dingfakeappkey"
    app_secret: str = "fake-app-secret"
    agent_id: int = 3000001
    users: set[str] = field(default_factory=set)  # known userids (empty: any)
    # DingTalk's once-a-day is a day in China; the fake's stays the day it started on (a re-send across midnight
    # would otherwise reach the person again, and a test that counts deliveries would fail at that minute)
    day: date = field(default_factory=lambda: datetime.now(ZoneInfo("Asia/Shanghai")).date())
    name = "fake dingtalk"

    def __post_init__(self) -> None:
        self.lock = threading.Lock()
        self.port = free_port()
        self.app = Starlette(routes=[
            Route("/gettoken", self._token, methods=["GET"]),
            Route("/topapi/message/corpconversation/asyncsend_v2", self._send, methods=["POST"]),
            Route("/topapi/message/corpconversation/getsendresult", self._result, methods=["POST"]),
        ])
        self.reset()

    def reset(self) -> None:
        self.tokens: set[str] = set()
        self.token_requests = 0
        self.notifications: dict[int, Notification] = {}
        self.seen: set[tuple[str, str, date]] = set()  # (userid, content, day) delivered
        self.failures: deque[int] = deque()
        self.refused: list[int] = []
        self.taken = 0  # sends taken (answered ok)
        self.holds: list[Hold] = []

    # ------------------------------------------------------------------ control

    def expire_tokens(self) -> None:
        with self.lock:
            self.tokens.clear()

    def fail_next(self, n: int, errcode: int) -> None:
        with self.lock:
            self.failures.extend([errcode] * n)

    def hold_sends(self, after: int = 1) -> Hold:
        with self.lock:
            hold = Hold(at=self.taken + after)
            self.holds.append(hold)
            return hold

    def read(self, task_id: int) -> None:
        """The person opens the notification."""
        self.notifications[task_id].read = True

    def delivered(self, userid: str | None = None) -> list[Notification]:
        return [n for n in self.notifications.values() if n.delivered and userid in (None, n.userid)]

    # ------------------------------------------------------------------ the oapi

    def _error(self, code: int, msg: str) -> JSONResponse:
        with self.lock:
            self.refused.append(code)
        return JSONResponse({"errcode": code, "errmsg": msg, "request_id": uuid.uuid4().hex})

    def _token_ok(self, request: Request) -> bool:
        with self.lock:
            return request.query_params.get("access_token") in self.tokens

    async def _token(self, request: Request) -> JSONResponse:
        q = request.query_params
        if q.get("appkey") != self.app_key or q.get("appsecret") != self.app_secret:
            return self._error(40089, "不合法的corpid或corpsecret")
        token = uuid.uuid4().hex
        with self.lock:
            self.tokens.add(token)
            self.token_requests += 1
        return JSONResponse({"errcode": 0, "errmsg": "ok", "access_token": token, "expires_in": 7200})

    async def _send(self, request: Request) -> JSONResponse:
        if not self._token_ok(request):
            return self._error(40014, "不合法的access_token")
        body = await request.json()
        if body.get("agent_id") != self.agent_id:
            return self._error(60011, "没有调用该接口的权限 (agent_id)")
        with self.lock:
            failure = self.failures.popleft() if self.failures else None
        if failure is not None:
            return self._error(failure, "fake failure")
        user, msg = str(body.get("userid_list") or ""), body.get("msg") or {}
        if not user or "," in user or msg.get("msgtype") not in ("action_card", "text"):
            return self._error(33, "参数错误 (one userid, action_card or text)")
        content = repr(sorted(msg.items()))
        task_id = uuid.uuid4().int % 10**12
        with self.lock:
            fresh = (user, content, self.day) not in self.seen
            self.seen.add((user, content, self.day))
            n = self.notifications[task_id] = Notification(task_id, user, msg, delivered=fresh)
            self.taken += 1
            hold = next((h for h in self.holds if not h.released.is_set() and self.taken >= h.at), None)
            if hold is not None:
                hold.held.append(n)
                hold.reached.set()
        if hold is not None:  # taken; the answer waits (a bound against a test that never releases)
            await asyncio.to_thread(hold.released.wait, 600)
        return JSONResponse({"errcode": 0, "errmsg": "ok", "task_id": task_id, "request_id": uuid.uuid4().hex})

    async def _result(self, request: Request) -> JSONResponse:
        if not self._token_ok(request):
            return self._error(40014, "不合法的access_token")
        body = await request.json()
        n = self.notifications.get(int(body.get("task_id") or 0))
        if n is None or body.get("agent_id") != self.agent_id:
            return self._error(40035, "task_id 不存在")
        invalid = bool(self.users) and n.userid not in self.users
        result = {"read_user_id_list": [n.userid] if n.read and not invalid else [],
                  "unread_user_id_list": [n.userid] if not n.read and not invalid else [],
                  "invalid_user_id_list": [n.userid] if invalid else [],
                  "forbidden_user_id_list": [], "failed_user_id_list": [], "forbidden_list": []}
        return JSONResponse({"errcode": 0, "errmsg": "ok", "send_result": result, "request_id": uuid.uuid4().hex})


def use_fake_dingtalk(monkeypatch, fake: FakeDingTalk, public_base_url: str = "http://yingji.test") -> None:
    """IM by DingTalk work notifications at the fake; built gateways and gates forgotten."""
    from activities.delivery import reset_gates
    from activities.gateways import reset_gateways
    from config import get_settings

    for name, value in {"GATEWAY_IM": "dingtalk", "DINGTALK_APP_KEY": fake.app_key,
                        "DINGTALK_APP_SECRET": fake.app_secret, "DINGTALK_AGENT_ID": str(fake.agent_id),
                        "DINGTALK_API_BASE": fake.base_url, "PUBLIC_BASE_URL": public_base_url,
                        "RUN_SCHEDULER": "false"}.items():
        monkeypatch.setenv(f"YINGJI_{name}", value)
    get_settings.cache_clear()
    reset_gateways()
    reset_gates()
    fake.reset()
