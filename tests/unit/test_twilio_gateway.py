"""The Twilio gateway: the real twilio SDK against the local fake Twilio server, through the
real delivery code (outbox claim, rate gates, results). Exactly one send per message, whatever
fails; Twilio's errors become outcomes; leaders first; the IM robot channel."""
from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import http.client
import http.server
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import uvicorn
from sqlmodel import select
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from activities.delivery import Claim, Delivery, _begin_call, _claim, _record_results, deliver, gate_for
from activities.gateways import OutgoingMessage, SendResult, gateway_for, reset_gateways
from activities.gateways.base import PROVIDER_THREADS, provider_call
from activities.gateways.im import ImRobotGateway
from activities.gateways.simulator import SimulatorGateway
from activities.gateways.twilio import TwilioGateway
from config import get_settings
from store.db import session_scope
from store.messages import OutboxMessage
from tests.fakes.twilio_server import FakeTwilio, use_fake_twilio
from tests.helpers import free_port, poll

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def fake():
    with FakeTwilio() as f:
        yield f


@pytest.fixture
def twilio(fake, db_url, monkeypatch):
    use_fake_twilio(monkeypatch, fake)
    gw = gateway_for("sms")
    assert isinstance(gw, TwilioGateway)
    gw.throttle_backoff_s = 0.01
    yield fake
    reset_gateways()


def sms(n: int, priority: int = 100, prefix: str = "t") -> Delivery:
    return Delivery(key=f"{prefix}/{n}/sms", channel="sms", to=f"+86138000{n:05d}", body=f"【叫应】测试 {prefix} {n}",
                    person_id=f"p{n}", subject="callout-t", priority=priority)


def voice(n: int, priority: int = 100, prefix: str = "t") -> Delivery:
    return Delivery(key=f"{prefix}/{n}/voice", channel="voice", to=f"+86139000{n:05d}", body=f"【叫应】测试 {n}",
                    voice_text=f"暴雨橙色预警 {n}", person_id=f"p{n}", subject="callout-t", priority=priority)


def rows() -> dict[str, OutboxMessage]:
    with session_scope(write=False) as s:
        return {r.idempotency_key: r for r in s.exec(select(OutboxMessage))}


# ------------------------------------------------------------------ what goes to Twilio


async def test_sms_through_the_sdk(twilio):
    [out] = await deliver([sms(1)])
    [req] = twilio.creates("sms")
    row = rows()["t/1/sms"]
    assert out.status == "sent" and out.provider_id == row.provider_id and out.provider_id in twilio.messages
    assert req.one("To") == "+8613800000001" and req.one("From") == twilio.from_number
    assert req.one("Body") == "【叫应】测试 t 1"
    assert req.one("StatusCallback") == f"http://yingji.test/api/webhooks/twilio/sms/status?o={row.id}"
    assert row.gateway == "twilio" and row.status == "sent"


async def test_voice_call_parameters(twilio):
    [out] = await deliver([voice(1)])
    [req] = twilio.creates("voice")
    row = rows()["t/1/voice"]
    assert out.status == "sent" and out.provider_id in twilio.calls
    assert req.one("MachineDetection") == "Enable"
    assert req.one("Url") == f"http://yingji.test/api/webhooks/twilio/voice/twiml?o={row.id}"
    assert req.one("StatusCallback") == f"http://yingji.test/api/webhooks/twilio/voice/status?o={row.id}"
    assert req.params["StatusCallbackEvent"] == ["initiated", "ringing", "answered", "completed"]
    assert row.meta["voice_text"] == "暴雨橙色预警 1"  # what the TwiML webhook will say


async def test_21610_is_opted_out(twilio):
    twilio.fail_next(1, 21610)
    [out] = await deliver([sms(1)])
    assert out.status == "opted_out" and "21610" in out.error
    assert rows()["t/1/sms"].status == "opted_out"


async def test_30003_is_failed(twilio):
    twilio.fail_next(1, 30003)
    [out] = await deliver([sms(1)])
    assert out.status == "failed" and "30003" in out.error


async def test_429_is_retried_with_backoff(twilio):
    twilio.fail_next(2, 20429)
    [out] = await deliver([sms(1)])
    assert out.status == "sent"
    assert [r.status for r in twilio.creates()] == [429, 429, 201]


async def test_429_gives_up_after_a_few_tries(twilio):
    twilio.fail_next(10, 20429)
    [out] = await deliver([sms(1)])
    assert out.status == "failed" and "20429" in out.error
    assert len(twilio.creates()) == 4


async def test_5xx_is_settled_by_asking_twilio_not_by_sending_again(twilio):
    twilio.fail_next(1, 20500, http_status=500)
    [out] = await deliver([sms(1)])
    assert out.status == "failed" and "no such sms" in out.error
    assert len(twilio.creates()) == 1
    assert any(r.method == "GET" for r in twilio.requests)


class CloseReused:
    """A TCP proxy in front of the fake: with `close_next` set, the next request that comes on a connection that
    already carried one is not passed on; the connection is closed under it, with no answer — as when a server's
    keep-alive close meets the client reusing that connection (the Twilio SDK's pool does)."""

    def __init__(self, target_port: int) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.target = target_port
        self.close_next = False
        self.closed = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target))
            threading.Thread(target=self._requests, args=(client, upstream), daemon=True).start()
            threading.Thread(target=self._answers, args=(upstream, client), daemon=True).start()

    def _requests(self, client: socket.socket, upstream: socket.socket) -> None:
        seen = 0
        try:
            while data := client.recv(65536):
                if data.startswith((b"POST ", b"GET ")):
                    seen += 1
                    if seen > 1 and self.close_next:
                        self.close_next, self.closed = False, self.closed + 1
                        break
                upstream.sendall(data)
        except OSError:
            pass
        for sock in (client, upstream):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    @staticmethod
    def _answers(upstream: socket.socket, client: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := upstream.recv(65536):
                client.sendall(data)

    def stop(self) -> None:
        self.server.close()


async def test_a_create_on_a_connection_closed_under_it_is_sent_again_once(fake, db_url, monkeypatch):
    """The connection the SDK reuses is closed under the create (no answer): Twilio, asked, has no such message,
    so it is sent once more on a new connection and is `sent`, created once (it was reported failed: a person's
    message lost to a keep-alive close, tests/faults/test_send_overlap.py met it one run in nine)."""
    proxy = CloseReused(urlsplit(fake.base_url).port)
    try:
        use_fake_twilio(monkeypatch, fake)
        monkeypatch.setenv("YINGJI_TWILIO_API_BASE", f"http://127.0.0.1:{proxy.port}")
        get_settings.cache_clear()
        reset_gateways()
        [first] = await deliver([sms(1, prefix="reuse")])  # opens the connection the next create reuses
        proxy.close_next = True
        [out] = await deliver([sms(2, prefix="reuse")])
        assert proxy.closed == 1 and first.status == "sent"
        assert out.status == "sent" and out.provider_id == rows()["reuse/2/sms"].provider_id, out.error
        assert [r.one("Body") for r in fake.created("sms")].count("【叫应】测试 reuse 2") == 1
        assert any(r.method == "GET" for r in fake.requests)  # asked before sending again
    finally:
        proxy.stop()
        reset_gateways()


# ------------------------------------------------------------------ the SDK's connections and proxy


def outgoing(n: int) -> OutgoingMessage:
    return OutgoingMessage(outbox_id=n, idempotency_key=f"burst/{n}/sms", channel="sms", to=f"+86137000{n:05d}",
                           body=f"【叫应】测试 burst {n}")


async def test_a_burst_of_sends_keeps_a_connection_per_provider_thread(twilio):
    """As many creates at once as the process has provider threads, their answers held by the fake until every one
    has arrived: all their connections go back to the SDK's pool, and the next such burst opens none. (The SDK kept
    6 connections to https on two cores, requests 10 to http: every send past them opened a connection — a TLS
    handshake to Twilio — and threw it away after one request.)"""
    gw = gateway_for("sms")
    pools = gw.client.http_client.session.get_adapter(twilio.base_url).poolmanager.pools

    def opened() -> int:  # connections the SDK's session has opened to the fake
        return sum(pools[key].num_connections for key in pools.keys())

    async def burst(first: int) -> None:
        hold = twilio.hold_creates()
        sends = [asyncio.ensure_future(provider_call(gw._create, outgoing(n)))
                 for n in range(first, first + PROVIDER_THREADS)]
        async def held() -> int:
            return len(hold.held)

        await poll(held, lambda n: n == PROVIDER_THREADS, timeout=60, what="every create of the burst at the fake")
        hold.release()
        assert all(await asyncio.gather(*sends))  # each create's sid

    await burst(0)
    assert opened() == PROVIDER_THREADS
    await burst(PROVIDER_THREADS)
    assert opened() == PROVIDER_THREADS  # the second burst went on the first one's connections


class ForwardProxy(http.server.ThreadingHTTPServer):
    """An HTTP forward proxy: passes each request (absolute-form, as a client sends it to a proxy) on to its
    origin and the answer back; `seen` are the URLs it carried."""

    def __init__(self) -> None:
        self.seen: list[str] = []

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                self._forward()

            def do_POST(self) -> None:
                self._forward()

            def _forward(self) -> None:
                url = urlsplit(self.path)
                self.server.seen.append(self.path)  # type: ignore[attr-defined]
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("proxy-connection", "connection")}
                origin = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
                origin.request(self.command, url.path + (f"?{url.query}" if url.query else ""), body, headers)
                answer = origin.getresponse()
                data = answer.read()
                self.send_response(answer.status)
                for k, v in answer.getheaders():
                    if k.lower() not in ("transfer-encoding", "connection", "content-length", "date", "server"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server_address[1]}"
        threading.Thread(target=self.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.shutdown()
        self.server_close()


async def test_the_environments_proxy_is_read_once_when_the_gateway_is_built(fake, db_url, monkeypatch):
    """HTTP_PROXY / NO_PROXY as `requests` reads them, read when the gateway is built: its sends go through the
    proxy the environment named then (a change afterwards moves nothing: a send reads no environment, where reading
    it twice per request was a fifth of a send's CPU through the SDK), and a NO_PROXY naming Twilio's host sends
    around it."""
    proxy = ForwardProxy()
    try:
        use_fake_twilio(monkeypatch, fake)
        for name in ("NO_PROXY", "ALL_PROXY", "HTTPS_PROXY", "HTTP_PROXY"):
            monkeypatch.delenv(name, raising=False)
            monkeypatch.delenv(name.lower(), raising=False)
        monkeypatch.setenv("http_proxy", proxy.url)
        reset_gateways()
        gateway_for("sms")
        monkeypatch.delenv("http_proxy")
        [out] = await deliver([sms(1, prefix="proxy")])
        assert out.status == "sent", out.error
        assert [urlsplit(u).path.rsplit("/", 1)[-1] for u in proxy.seen] == ["Messages.json"]
        assert urlsplit(proxy.seen[0]).netloc == urlsplit(fake.base_url).netloc

        monkeypatch.setenv("http_proxy", proxy.url)
        monkeypatch.setenv("no_proxy", "127.0.0.1")
        reset_gateways()
        [out] = await deliver([sms(2, prefix="proxy")])
        assert out.status == "sent", out.error
        assert len(proxy.seen) == 1 and len(fake.created("sms")) == 2  # straight to Twilio's host
    finally:
        proxy.stop()
        reset_gateways()


# ------------------------------------------------------------------ exactly one send


async def test_retried_activity_sends_once(twilio):
    items = [sms(1), voice(2)]
    first = await deliver(items)
    again = await deliver(items)
    assert len(twilio.creates()) == 2
    assert [o.fresh for o in first] == [True, True] and [o.fresh for o in again] == [False, False]
    assert [o.provider_id for o in first] == [o.provider_id for o in again]


def backdate_calls() -> None:
    """Rows at the gateway when their attempt died, as a retry finds them: their calls long over."""
    from sqlalchemy import update

    with session_scope() as s:
        s.execute(update(OutboxMessage).where(OutboxMessage.gateway_at.is_not(None))
                  .values(gateway_at=datetime.now(UTC) - timedelta(minutes=1)))


async def test_crash_between_sending_and_result_is_reconciled(twilio):
    items = [sms(1), voice(2), sms(3)]
    crashed = Claim("wf/run/1", 1)  # the attempt that dies; the retry is another
    claimed = await asyncio.to_thread(_claim, items, crashed)  # step 1: rows in `sending`
    sent = {}
    for item in items[:2]:  # step 2: Twilio got these two… then the worker died: no step 3
        row = claimed[item.key]
        assert await asyncio.to_thread(_begin_call, row["id"], crashed)  # the fence it passed first
        msg = OutgoingMessage(outbox_id=row["id"], idempotency_key=item.key, channel=item.channel, to=item.to,
                              body=item.body, created_at=row["created_at"])
        sent[item.key] = (await gateway_for(item.channel).send(msg)).provider_id
    assert {r.status for r in rows().values()} == {"sending"}
    backdate_calls()  # the retry comes after the heartbeat timeout: the dead attempt's calls have ended
    outcomes = {o.key: o for o in await deliver(items)}  # the retry
    creates = twilio.creates()
    assert len(creates) == 3  # the two before the crash, and the one that never went
    assert [r.one("To") for r in creates].count(items[2].to) == 1
    for key, sid in sent.items():
        assert outcomes[key].status == "sent" and outcomes[key].provider_id == sid == rows()[key].provider_id
    assert outcomes[items[2].key].status == "sent"


async def test_crash_does_not_take_another_call_to_the_same_number(twilio):
    earlier = voice(7, prefix="earlier")
    [done] = await deliver([earlier])  # a call recorded normally, minutes ago
    later = voice(7, prefix="later")
    await asyncio.to_thread(_claim, [later])  # claimed, then the worker died before asking Twilio
    [out] = await deliver([later])
    assert out.provider_id != done.provider_id
    assert len(twilio.creates("voice")) == 2


async def test_killed_worker_sends_nothing_twice(twilio, monkeypatch):
    """A real process killed with SIGKILL in the middle of a batch; the retry completes it."""
    monkeypatch.setenv("YINGJI_RATE_SMS_PER_S", "10")
    n = 30
    script = ("import asyncio, sys; sys.path.insert(0, %r)\n"
              "from tests.unit.test_twilio_gateway import sms\n"
              "from activities.delivery import deliver\n"
              "asyncio.run(deliver([sms(i) for i in range(%d)]))\n") % (str(ROOT), n)
    hold = twilio.hold_creates(after=8)  # the 8th message is created, its answer held: killed right there
    proc = subprocess.Popen([sys.executable, "-c", script], env=os.environ.copy(), cwd=ROOT)
    try:
        await hold.wait(timeout=120)  # anti-hang bound: the process starts and sends 8 within seconds
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        hold.release()
        if proc.poll() is None:
            proc.kill()
    before = len(twilio.created())
    assert before < n and "sending" in {r.status for r in rows().values()}  # each answer is recorded as it comes
    backdate_calls()
    outcomes = await deliver([sms(i) for i in range(n)])
    to = [r.one("To") for r in twilio.created()]
    assert sorted(to) == sorted(sms(i).to for i in range(n))  # every message exactly once
    assert all(o.status == "sent" for o in outcomes)
    assert {r.provider_id for r in rows().values()} == set(twilio.messages)
    assert [rows()[sms(i).key].provider_id for i in range(n) if sms(i).to == hold.held[0][0].one("To")] == \
        [hold.held[0][1]], "the message Twilio created before the kill is the one on record"


# ------------------------------------------------------------------ rate limits and priority


async def test_leaders_overtake_across_concurrent_activities(twilio, monkeypatch):
    monkeypatch.setenv("YINGJI_RATE_SMS_PER_S", "10")
    get_settings.cache_clear()
    crowd = asyncio.create_task(deliver([sms(i, prefix="crowd") for i in range(20)]))
    await poll(lambda: asyncio.sleep(0, len(twilio.created())), lambda n: n >= 2, timeout=30,
               what="the crowd queued and sending")
    await deliver([sms(i, priority=0, prefix="leader") for i in range(3)])
    await crowd
    order = [r.one("Body").split()[1] for r in twilio.created()]
    first, last = order.index("leader"), max(i for i, who in enumerate(order) if who == "leader")
    # the leaders go out together, ahead of the crowd still queued: between them at most the crowd sends
    # that were granted already and on their way (a busy machine may have two in flight)
    assert order[first:last + 1].count("crowd") <= 2 and "crowd" in order[last + 1:], order
    assert order.count("leader") == 3 and len(order) == 23


async def test_rate_limit_per_channel(twilio, monkeypatch):
    monkeypatch.setenv("YINGJI_RATE_SMS_PER_S", "20")
    get_settings.cache_clear()
    started = time.monotonic()
    await deliver([sms(i) for i in range(21)])
    elapsed = time.monotonic() - started
    # 21 sends at 20/s: one second, not less. A lower bound only: a slow machine takes longer, and may.
    assert elapsed >= 0.9 and len(twilio.created()) == 21, elapsed
    assert gate_for(gateway_for("sms"), "sms").rate == 20
    assert gate_for(gateway_for("sms"), "sms") is not gate_for(gateway_for("voice"), "voice")


async def test_a_throttled_send_queues_at_the_gate_again(twilio, monkeypatch):
    """Twilio's 429s are requests too: the retries of throttled sends keep to the account's rate."""
    monkeypatch.setenv("YINGJI_RATE_SMS_PER_S", "20")
    get_settings.cache_clear()
    twilio.fail_next(6, 20429)
    outcomes = await deliver([sms(i) for i in range(20)])
    assert all(o.status == "sent" for o in outcomes)
    tried = [r.at for r in twilio.creates("sms")]
    assert len(tried) == 26 and len(twilio.created()) == 20
    # 26 requests at 20/s: a second and a quarter at least (the retry used to skip the queue),
    # a lower bound that a slow machine only makes easier to meet; 10% for the
    # fence each send writes between its slot and its request (the first write of a test is the slowest)
    assert tried[-1] - tried[0] >= 25 / 20 * 0.9, tried[-1] - tried[0]


def test_simulator_has_no_gate(db_url):
    assert gate_for(SimulatorGateway(get_settings()), "sms") is None


# ------------------------------------------------------------------ IM robot


class Robot:
    """A DingTalk-style robot endpoint: checks the signature, records what it got."""

    def __init__(self, secret: str) -> None:
        self.secret, self.got, self.errcode = secret, [], 0
        self.port = free_port()
        app = Starlette(routes=[Route("/robot/send", self.send, methods=["POST"])])
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning"))

    async def send(self, request: Request) -> JSONResponse:
        q = request.query_params
        expected = base64.b64encode(hmac.new(self.secret.encode(), f"{q['timestamp']}\n{self.secret}".encode(),
                                             hashlib.sha256).digest()).decode()
        if q.get("sign") != expected or q.get("access_token") != "tok":
            return JSONResponse({"errcode": 310000, "errmsg": "sign not match"})
        self.got.append(json.loads(await request.body()))
        return JSONResponse({"errcode": self.errcode, "errmsg": "ok" if not self.errcode else "too fast"})


@pytest.fixture
async def robot(db_url, monkeypatch):
    r = Robot("SECtest")
    task = asyncio.create_task(r.server.serve())
    while not r.server.started:
        await asyncio.sleep(0.01)
    monkeypatch.setenv("YINGJI_IM_WEBHOOK_URL", f"http://127.0.0.1:{r.port}/robot/send?access_token=tok")
    monkeypatch.setenv("YINGJI_IM_WEBHOOK_SECRET", "SECtest")
    get_settings.cache_clear()
    reset_gateways()
    yield r
    r.server.should_exit = True
    await task
    reset_gateways()


async def test_im_goes_to_the_robot_signed_with_the_ack_link_as_button(robot):
    assert isinstance(gateway_for("im"), ImRobotGateway)
    item = Delivery(key="t/1/im", channel="im", to="user-1", body="【叫应】暴雨橙色预警\n请确认", person_id="p1",
                    ack_url="http://yingji.test/ack/abc", subject="callout-t")
    [out] = await deliver([item])
    assert out.status == "sent"
    [got] = robot.got
    assert got["msgtype"] == "actionCard"
    assert got["actionCard"]["singleURL"] == "http://yingji.test/ack/abc"
    assert got["actionCard"]["title"] == "【叫应】暴雨橙色预警"


async def test_im_robot_error_is_failed(robot):
    robot.errcode = 130101
    [out] = await deliver([Delivery(key="t/2/im", channel="im", to="user-2", body="告知", subject="callout-t")])
    assert out.status == "failed" and "130101" in out.error
    assert robot.got[0]["msgtype"] == "markdown" and robot.got[0]["at"]["atUserIds"] == ["user-2"]


def test_im_without_a_robot_goes_to_the_simulator(db_url):
    reset_gateways()
    assert isinstance(gateway_for("im"), SimulatorGateway)


def test_signed_robot_url_keeps_the_token(db_url, monkeypatch):
    monkeypatch.setenv("YINGJI_IM_WEBHOOK_URL", "https://oapi.dingtalk.com/robot/send?access_token=tok")
    monkeypatch.setenv("YINGJI_IM_WEBHOOK_SECRET", "SECx")
    get_settings.cache_clear()
    url = ImRobotGateway(get_settings()).signed_url(now_ms=1700000000000)
    q = parse_qs(urlsplit(url).query)
    assert q["access_token"] == ["tok"] and q["timestamp"] == ["1700000000000"]
    mac = hmac.new(b"SECx", b"1700000000000\nSECx", hashlib.sha256).digest()
    assert q["sign"] == [base64.b64encode(mac).decode()]


async def test_a_retry_beside_a_live_attempt_does_not_fail_what_the_robot_got(robot):
    """Issue 15: with the IM robot (which cannot be asked what it posted) a retry marked the messages of
    an attempt still running `failed`. Now it takes over only what that attempt had not begun to send,
    and waits for the answer of what it had."""
    items = [Delivery(key=f"im/{n}", channel="im", to=f"im-{n}", body=f"【叫应】测试 {n}", person_id=f"p{n}",
                      subject="callout-t") for n in (1, 2)]
    first = Claim("wf/run/1", 1)  # alive, but given up by Temporal
    claimed = await asyncio.to_thread(_claim, items, first)
    one = claimed[items[0].key]
    assert await asyncio.to_thread(_begin_call, one["id"], first)  # it is posting message 1 right now
    retry = asyncio.create_task(deliver(items))  # attempt 2
    for _ in range(1500):  # barrier: the retry has sent message 2 (it never went) and waits for message 1
        if robot.got or retry.done():
            break
        await asyncio.sleep(0.02)
    assert robot.got and not retry.done(), (robot.got, retry.done() and retry.result())
    assert await asyncio.to_thread(_record_results, {items[0].key: SendResult(status="sent", provider_id="IM-a1")}, first)
    outcomes = {o.key: o for o in await retry}
    assert outcomes[items[0].key].status == "sent" and outcomes[items[0].key].provider_id == "IM-a1"
    assert outcomes[items[1].key].status == "sent"
    assert [g["actionCard"]["text"] if "actionCard" in g else g["markdown"]["text"] for g in robot.got] == \
        ["【叫应】测试 2\n\n@im-2"]  # message 2 once, by the retry; message 1 not again
    assert {r.status for r in rows().values()} == {"sent"}
