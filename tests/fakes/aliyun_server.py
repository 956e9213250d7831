"""A local fake of Aliyun's SMS (Dysmsapi 2017-05-25) and voice (Dyvmsapi 2017-05-25) RPC APIs, for the official
SDKs to talk to (their endpoint pointed here, protocol http).

It checks every request as Aliyun does with the V3 signature the SDK (alibabacloud-tea-openapi) sends:
`Authorization: ACS3-HMAC-SHA256 Credential=<AccessKeyId>,SignedHeaders=<h1;h2…>,Signature=<hex>` over the
canonical request (method, path, the query sorted and percent-encoded, the signed headers lower-cased and sorted,
the hex SHA-256 of the body, which `x-acs-content-sha256` must also be); `x-acs-date` within 15 minutes and a
`x-acs-signature-nonce` used once. A request that fails any of these gets Aliyun's error (SignatureDoesNotMatch,
InvalidAccessKeyId.NotFound, SignatureNonceUsed, InvalidTimeStamp.Expired) and creates nothing.

It serves SendSms, QuerySendDetails, IvrCall and SingleCallByTts, counts what was created, fails the next N creates
on demand (an Aliyun error code at HTTP 200, or `Throttling.User` at 400), holds its answers to creates from the k-th
on (`hold_creates`: the message exists, the sender has not heard — a barrier for fault tests), and plays Aliyun's
side: the HTTP pushes (JSON arrays) of SmsReport, SmsUp, VoiceReport, IvrReport and VoiceCallReport to yingji's
webhooks with the configured token.
"""
from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import random
import re
import threading
import time
import uuid
from collections import Counter, deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from zoneinfo import ZoneInfo
from urllib.parse import parse_qsl, quote

import httpx
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.fakes.local_server import LocalServer
from tests.helpers import free_port

ALGORITHM = "ACS3-HMAC-SHA256"
AUTH = re.compile(r"^ACS3-HMAC-SHA256 Credential=([^,]+),SignedHeaders=([^,]+),Signature=([0-9a-f]+)$")
CREATES = {"SendSms": "sms", "IvrCall": "voice", "SingleCallByTts": "voice"}
WINDOW_S = 15 * 60
CHINA = ZoneInfo("Asia/Shanghai")


def canonical_request(method: str, path: str, query: list[tuple[str, str]], headers: dict[str, str],
                      signed: list[str], payload_hash: str) -> str:
    q = "&".join(f"{k}={quote(v, safe='~')}" for k, v in sorted(query))
    h = "".join(f"{name}:{headers.get(name, '').strip()}\n" for name in signed)
    return f"{method}\n{path or '/'}\n{q}\n{h}\n{';'.join(signed)}\n{payload_hash}"


def acs3_signature(secret: str, canonical: str) -> str:
    to_sign = f"{ALGORITHM}\n{hashlib.sha256(canonical.encode()).hexdigest()}"
    return hmac.new(secret.encode(), to_sign.encode(), hashlib.sha256).hexdigest()


@dataclass
class Recorded:
    action: str
    params: dict[str, str]
    status: int = 200
    code: str = "OK"

    @property
    def kind(self) -> str | None:
        return CREATES.get(self.action)


@dataclass
class Hold:
    """From the k-th create on (of `kind`), Aliyun creates the message or call and keeps its answer until
    `release()`; `held` are (request, BizId/CallId), `reached` is set at the first."""

    at: int
    kind: str | None = None
    held: list[tuple[Recorded, str]] = field(default_factory=list)
    reached: threading.Event = field(default_factory=threading.Event)
    released: threading.Event = field(default_factory=threading.Event)

    async def wait(self, timeout: float) -> None:
        if not await asyncio.to_thread(self.reached.wait, timeout):
            raise AssertionError(f"no create number {self.at} within {timeout:.0f} s (the hold was never reached)")

    def release(self) -> None:
        self.released.set()

    @property
    def outbox_ids(self) -> list[str]:
        return [r.params.get("OutId", "?") for r, _ in self.held]


class FakeAliyun(LocalServer):
    name = "fake aliyun"

    def __init__(self, access_key_id: str = "LTAI5tFakeAccessKey", access_key_secret: str = "fake-secret",
                 token: str = "push-token", webhook_base: str = "http://yingji.test") -> None:
        self.access_key_id, self.access_key_secret = access_key_id, access_key_secret
        self.token, self.webhook_base = token, webhook_base
        self.lock = threading.Lock()
        self.port = free_port()
        self.app = Starlette(routes=[Route("/", self._api, methods=["GET", "POST"])])
        self.reset()

    def reset(self) -> None:
        self.requests: list[Recorded] = []
        self.refused: list[tuple[str, str]] = []  # (action, Aliyun's error code) of requests refused at the door
        self.messages: dict[str, dict] = {}  # BizId -> message
        self.calls: dict[str, dict] = {}  # CallId -> call
        self.nonces: set[str] = set()
        self.failures: deque[tuple[str | None, str, int]] = deque()  # (kind, code, http status)
        for hold in getattr(self, "holds", []):
            hold.release()
        self.holds: list[Hold] = []
        self.accepted: Counter = Counter()
        self.random: tuple[random.Random, float, float] | None = None  # (rng, failure rate, throttle rate)

    def stop(self) -> None:
        for hold in self.holds:
            hold.release()
        super().stop()

    # ------------------------------------------------------------------ control

    def fail_next(self, n: int, code: str, http_status: int = 200, kind: str | None = None) -> None:
        """The next n creates (of `kind`: sms or voice) answer with this Aliyun code (at HTTP 200 as SendSms's
        business errors come, or at `http_status`, e.g. 400 for Throttling.User)."""
        with self.lock:
            self.failures.extend([(kind, code, http_status)] * n)

    def fail_randomly(self, failure_rate: float, throttle_rate: float = 0.0, seed: int = 1) -> None:
        """From now on each create fails with `isv.BUSINESS_LIMIT_CONTROL` (HTTP 200, nothing created) with
        probability `failure_rate`, or is throttled (`Throttling.User`, HTTP 400) with `throttle_rate`."""
        with self.lock:
            self.random = (random.Random(seed), failure_rate, throttle_rate)

    def hold_creates(self, after: int = 1, kind: str | None = None) -> Hold:
        with self.lock:
            hold = Hold(at=self.accepted[kind] + after, kind=kind)
            self.holds.append(hold)
        return hold

    def created(self, kind: str | None = None) -> list[Recorded]:
        """Creates that Aliyun accepted (a message or call exists)."""
        with self.lock:
            return [r for r in self.requests if r.kind and r.code == "OK" and (kind is None or r.kind == kind)]

    def sms_to(self, number: str) -> list[dict]:
        return [m for m in self.messages.values() if m["phone"] == number]

    # ------------------------------------------------------------------ the door: Aliyun's signature check

    def _refuse(self, action: str, code: str, message: str, status: int) -> JSONResponse:
        with self.lock:
            self.refused.append((action, code))
        return JSONResponse({"RequestId": uuid.uuid4().hex.upper(), "Code": code, "Message": message,
                             "HostId": "127.0.0.1", "Recommend": ""}, status_code=status)

    def _check(self, request: Request, raw: bytes, action: str) -> JSONResponse | None:
        m = AUTH.match(request.headers.get("authorization", ""))
        if m is None:
            return self._refuse(action, "MissingAuthorization", "Authorization is mandatory for this action.", 400)
        ak, signed_headers, signature = m.groups()
        if ak != self.access_key_id:
            return self._refuse(action, "InvalidAccessKeyId.NotFound", "Specified access key is not found.", 404)
        signed = signed_headers.split(";")
        headers = {k.lower(): v for k, v in request.headers.items()}
        needed = {"host", *(h for h in headers if h.startswith("x-acs-"))} - {"x-acs-credentials-provider"}
        if signed != sorted(signed) or not needed <= set(signed):
            return self._refuse(action, "SignatureDoesNotMatch", "the host and every x-acs- header must be signed", 400)
        payload_hash = hashlib.sha256(raw).hexdigest()
        if headers.get("x-acs-content-sha256") != payload_hash:
            return self._refuse(action, "ContentSHA256NotMatch", "x-acs-content-sha256 does not match the body", 400)
        try:
            at = datetime.strptime(headers.get("x-acs-date", ""), "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
        except ValueError:
            return self._refuse(action, "InvalidTimeStamp.Format", "x-acs-date is not ISO 8601 UTC", 400)
        if abs((datetime.now(UTC) - at).total_seconds()) > WINDOW_S:
            return self._refuse(action, "InvalidTimeStamp.Expired", "Specified time stamp or date value is expired.", 400)
        canonical = canonical_request(request.method, request.url.path,
                                      parse_qsl(request.url.query, keep_blank_values=True), headers, signed, payload_hash)
        if not hmac.compare_digest(acs3_signature(self.access_key_secret, canonical), signature):
            return self._refuse(action, "SignatureDoesNotMatch", "Specified signature is not matched with our calculation.", 400)
        nonce = headers.get("x-acs-signature-nonce", "")
        with self.lock:
            if not nonce or nonce in self.nonces:
                used = True
            else:
                self.nonces.add(nonce)
                used = False
        if used:
            return self._refuse(action, "SignatureNonceUsed", "Specified signature nonce was used already.", 400)
        return None

    # ------------------------------------------------------------------ the API

    async def _api(self, request: Request) -> JSONResponse:
        try:
            raw = await request.body()
        except ClientDisconnect:  # the sender died mid-request: nothing was created
            return JSONResponse({}, status_code=499)
        action = request.headers.get("x-acs-action", "")
        refused = self._check(request, raw, action)
        if refused is not None:
            return refused
        params = dict(parse_qsl(request.url.query, keep_blank_values=True))
        params.update(parse_qsl(raw.decode(), keep_blank_values=True))
        rec = Recorded(action, params)
        with self.lock:
            self.requests.append(rec)
        rid = uuid.uuid4().hex.upper()
        if action == "QuerySendDetails":
            return self._query(params, rid)
        kind = CREATES.get(action)
        if kind is None:
            return self._refuse(action, "InvalidAction.NotFound", f"Specified api {action!r} is not found", 404)
        failure = self._failure_for(kind)
        if failure is not None:
            code, status = failure
            rec.code, rec.status = code, status
            return JSONResponse({"RequestId": rid, "Code": code, "Message": f"fake failure {code}"}, status_code=status)
        if kind == "sms":
            ident = f"{int(time.time() * 1000)}^{uuid.uuid4().int % 10**10}"
            try:
                values = json.loads(params.get("TemplateParam") or "{}")
            except ValueError:
                rec.code = "isv.INVALID_JSON_PARAM"
                return JSONResponse({"RequestId": rid, "Code": rec.code, "Message": "JSON参数不合法"})
            with self.lock:
                self.messages[ident] = {"biz_id": ident, "phone": params.get("PhoneNumbers"), "out_id": params.get("OutId"),
                                        "template_code": params.get("TemplateCode"), "params": values,
                                        "sign_name": params.get("SignName"), "status": 1,
                                        "day": datetime.now(CHINA).strftime("%Y%m%d")}
            answer = {"RequestId": rid, "Code": "OK", "Message": "OK", "BizId": ident}
        else:
            ident = f"{uuid.uuid4().int % 10**15}^{uuid.uuid4().int % 10**12}"
            with self.lock:
                self.calls[ident] = {"call_id": ident, "action": action, "to": params.get("CalledNumber"),
                                     "show": params.get("CalledShowNumber"), "out_id": params.get("OutId"),
                                     "params": params}
            answer = {"RequestId": rid, "Code": "OK", "Message": "OK", "CallId": ident}
        hold = self._accept(rec, ident)
        if hold is not None:  # the answer waits (a bound against a test that never releases)
            await asyncio.to_thread(hold.released.wait, 600)
        return JSONResponse(answer)

    def _failure_for(self, kind: str) -> tuple[str, int] | None:
        with self.lock:
            for f in self.failures:
                if f[0] in (None, kind):
                    self.failures.remove(f)
                    return f[1], f[2]
            if self.random is not None:
                rng, fail, throttle = self.random
                x = rng.random()
                if x < fail:
                    return "isv.BUSINESS_LIMIT_CONTROL", 200
                if x < fail + throttle:
                    return "Throttling.User", 400
        return None

    def _accept(self, rec: Recorded, ident: str) -> Hold | None:
        with self.lock:
            self.accepted[rec.kind] += 1
            self.accepted[None] += 1
            for hold in self.holds:
                if not hold.released.is_set() and self.accepted[hold.kind] >= hold.at and hold.kind in (None, rec.kind):
                    hold.held.append((rec, ident))
                    hold.reached.set()
                    return hold
        return None

    def _query(self, params: dict[str, str], rid: str) -> JSONResponse:
        """QuerySendDetails: the day's messages to one number, newest first (no BizId in the list, as Aliyun)."""
        phone, day = params.get("PhoneNumber"), params.get("SendDate")
        if not phone or not day:
            return JSONResponse({"RequestId": rid, "Code": "isv.MISSING_PARAMETERS", "Message": "PhoneNumber, SendDate"})
        size, page = int(params.get("PageSize", "10")), int(params.get("CurrentPage", "1"))
        with self.lock:
            found = [m for m in self.messages.values() if m["phone"] == phone and m["day"] == day
                     and params.get("BizId") in (None, m["biz_id"])][::-1]
        rows = [{"PhoneNum": m["phone"], "SendStatus": m["status"], "ErrCode": m.get("err_code", "DELIVERED"),
                 "TemplateCode": m["template_code"], "Content": "", "SendDate": day, "ReceiveDate": "",
                 "OutId": m["out_id"]} for m in found[(page - 1) * size:page * size]]
        return JSONResponse({"RequestId": rid, "Code": "OK", "Message": "OK", "TotalCount": len(found),
                             "SmsSendDetailDTOs": {"SmsSendDetailDTO": rows}})

    # ------------------------------------------------------------------ Aliyun's pushes

    def url(self, path: str, token: str | None = None) -> str:
        return f"{self.webhook_base}/api/webhooks/aliyun/{path}?token={token or self.token}"

    async def push(self, http: httpx.AsyncClient, path: str, items: list[dict], *,
                   token: str | None = None) -> httpx.Response:
        return await http.post(self.url(path, token), json=items)

    async def sms_report(self, http: httpx.AsyncClient, biz_id: str, success: bool = True,
                         err_code: str = "DELIVERED", **kw) -> httpx.Response:
        m = self.messages[biz_id]
        m["status"], m["err_code"] = (3 if success else 2), err_code
        now = datetime.now().strftime("%Y-%m-%d %H:%M:%S")
        return await self.push(http, "sms/report", [{
            "phone_number": m["phone"], "send_time": now, "report_time": now, "success": success,
            "err_code": err_code, "err_msg": "用户接收成功" if success else "失败", "sms_size": "1",
            "biz_id": biz_id, "out_id": m["out_id"]}], **kw)

    async def sms_up(self, http: httpx.AsyncClient, phone: str, content: str, sequence_id: int | None = None,
                     **kw) -> httpx.Response:
        """A reply from a phone (上行短信 SmsUp); the same `sequence_id` again is Aliyun pushing it twice."""
        seq = sequence_id if sequence_id is not None else uuid.uuid4().int % 10**12
        return await self.push(http, "sms/up", [{
            "phone_number": phone, "send_time": datetime.now().strftime("%Y-%m-%d %H:%M:%S"), "content": content,
            "sign_name": "青溪区应急", "dest_code": "1234", "sequence_id": seq}], **kw)

    def _call(self, call_id: str) -> dict:
        return self.calls[call_id]

    async def voice_report(self, http: httpx.AsyncClient, call_id: str, status_code: str = "200000",
                           dtmf: str | None = None, **kw) -> httpx.Response:
        """The call's result (呼叫结果 VoiceReport)."""
        c = self._call(call_id)
        now = datetime.now().strftime("%Y-%m-%d %H:%M:%S")
        item = {"call_id": call_id, "start_time": now, "end_time": now, "duration": 12, "status_code": status_code,
                "status_msg": "", "out_id": c["out_id"], "callee": c["to"], "caller": c["show"], "toll_type": "LOCAL"}
        if dtmf is not None:
            item["dtmf"] = dtmf
        return await self.push(http, "voice/report", [item], **kw)

    async def ivr_report(self, http: httpx.AsyncClient, call_id: str, dtmf: str, **kw) -> httpx.Response:
        """The keys pressed in an IvrCall (交互式语音应答 IvrReport)."""
        c = self._call(call_id)
        now = datetime.now().strftime("%Y-%m-%d %H:%M:%S")
        return await self.push(http, "voice/ivr", [{
            "call_id": call_id, "start_time": now, "end_time": now, "duration": 20, "status_code": "200000",
            "status_msg": "", "out_id": c["out_id"], "dtmf": dtmf, "callee": c["to"], "caller": c["show"]}], **kw)

    async def call_progress(self, http: httpx.AsyncClient, call_id: str, status_code: str,
                            dtmf: str | None = None, **kw) -> httpx.Response:
        """A call's intermediate state (呼叫中间状态 VoiceCallReport)."""
        c = self._call(call_id)
        item = {"call_id": call_id, "status_code": status_code, "status_time": datetime.now().strftime("%Y-%m-%d %H:%M:%S"),
                "out_id": c["out_id"]}
        if dtmf is not None:
            item["dtmf"] = dtmf
        return await self.push(http, "voice/progress", [item], **kw)


TEMPLATE_CODES = {"callout.notify": "SMS_300000001", "callout.escalate": "SMS_300000002",
                  "callout.inform": "SMS_300000003", "callout.cancel": "SMS_300000004",
                  "callout.update": "SMS_300000005", "login.code": "SMS_300000006", "notice": "SMS_300000007"}
VOICE_CODES = {"ivr_start": "TTS_400000001", "key_1": "TTS_400000002", "key_2": "TTS_400000003",
               "bye": "TTS_400000004", "notice": "TTS_400000005"}


def approved_definitions(target) -> str:
    """A copy of the shipped definitions with every Aliyun template code filled in (as an office would, once
    approved) at `target`; its path."""
    import shutil
    from pathlib import Path

    root = Path(__file__).resolve().parents[2] / "definitions"
    target = Path(target)
    if not target.exists():
        shutil.copytree(root, target, ignore=shutil.ignore_patterns("__pycache__", "*.py"))
    write_templates(target / "gateways" / "aliyun.yaml")
    return str(target)


def write_templates(path) -> None:
    """definitions/gateways/aliyun.yaml with the fake's template codes."""
    from pathlib import Path

    import yaml

    path = Path(path)
    src = Path(__file__).resolve().parents[2] / "definitions" / "gateways" / "aliyun.yaml"
    doc = yaml.safe_load(src.read_text(encoding="utf-8"))
    for kind, code in TEMPLATE_CODES.items():
        doc["sms"][kind]["template_code"] = code
    doc["voice"].update(VOICE_CODES)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False), encoding="utf-8")


def aliyun_env(fake: FakeAliyun, definitions_dir: str | None = None, public_base_url: str = "http://yingji.test",
               sms_per_s: float = 50.0, voice_per_s: float = 50.0) -> dict[str, str]:
    """YINGJI_* variables pointing SMS and voice at the fake."""
    env = {"YINGJI_GATEWAY_SMS": "aliyun", "YINGJI_GATEWAY_VOICE": "aliyun",
           "YINGJI_ALIYUN_ACCESS_KEY_ID": fake.access_key_id, "YINGJI_ALIYUN_ACCESS_KEY_SECRET": fake.access_key_secret,
           "YINGJI_ALIYUN_SMS_SIGN_NAME": "青溪区应急", "YINGJI_ALIYUN_VOICE_SHOW_NUMBER": "057100000000",
           "YINGJI_ALIYUN_SMS_ENDPOINT": f"127.0.0.1:{fake.port}", "YINGJI_ALIYUN_VOICE_ENDPOINT": f"127.0.0.1:{fake.port}",
           "YINGJI_ALIYUN_PROTOCOL": "http", "YINGJI_ALIYUN_CALLBACK_TOKEN": fake.token,
           "YINGJI_PUBLIC_BASE_URL": public_base_url, "YINGJI_RATE_SMS_PER_S": str(sms_per_s),
           "YINGJI_RATE_VOICE_PER_S": str(voice_per_s)}
    if definitions_dir:
        env["YINGJI_DEFINITIONS_DIR"] = definitions_dir
    return env


def use_fake_aliyun(monkeypatch, fake: FakeAliyun, definitions_dir: str, **kw) -> None:
    """Point yingji's settings at the fake (SMS and voice by Aliyun) and forget built gateways and gates."""
    from activities.delivery import reset_gates
    from activities.gateways import reset_gateways
    from config import get_settings

    for name, value in {**aliyun_env(fake, definitions_dir, **kw), "YINGJI_RUN_SCHEDULER": "false"}.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    reset_gateways()
    reset_gates()
    fake.reset()
