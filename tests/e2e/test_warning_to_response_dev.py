"""Issue 20 end to end on the Temporal dev server, through the API: an orange 暴雨 CAP alert for two towns
starts the call-out, plays the warning on the 应急广播 terminals of exactly those towns (a local fake broadcast
platform over real HTTP, its signed receipt pushed back to the webhook), and proposes the flood plan's Ⅳ级
response to the leading leader on duty; the leader accepts by the SMS's link (the short alias, as a phone opens
it) and the activation runs, linked to the warning and the proposal, with the incident it received naming the
call-out. A yellow warning through the same API is published (publication_id), nobody is called.
"""
from __future__ import annotations

import re
import uuid

import httpx
import pytest
from sqlmodel import select

from api.app import create_app
from config import get_settings
from store.audit import AuditEvent, verify
from store.db import session_scope
from store.messages import OutboxMessage
from tests.factories import response_district
from tests.fakes.broadcast_platform import FakeBroadcastPlatform
from tests.helpers import CAP, in_seconds, poll, use_definitions
from worker import build_worker
from workflows.subjects import activation_subject, proposal_subject

TOWNS = ["330110001", "330110002"]  # the CAP's two geocodes


@pytest.fixture
def platform(tmp_path, monkeypatch):
    with FakeBroadcastPlatform() as fake:
        use_definitions(tmp_path, monkeypatch, in_seconds, NIGHT_START="00:00", NIGHT_END="00:00",
                        ADMIN_TOKEN="e2e-admin", BROADCAST_GATEWAY="http", BROADCAST_URL=fake.base_url,
                        BROADCAST_SECRET=fake.secret, PUBLIC_BASE_URL="http://test")
        yield fake


def sent(subject: str, person_id: str, channel: str = "sms") -> list[OutboxMessage]:
    with session_scope(write=False) as s:
        return list(s.exec(select(OutboxMessage).where(OutboxMessage.subject == subject,
                                                       OutboxMessage.person_id == person_id,
                                                       OutboxMessage.channel == channel,
                                                       OutboxMessage.provider_id.is_not(None))))


def kinds(subject: str) -> list[str]:
    with session_scope(write=False) as s:
        return [e.kind for e in s.exec(select(AuditEvent).where(AuditEvent.subject == subject)
                                       .order_by(AuditEvent.seq))]


def payload(subject: str, kind: str) -> dict:
    with session_scope(write=False) as s:
        ev = s.exec(select(AuditEvent).where(AuditEvent.subject == subject, AuditEvent.kind == kind)).first()
        assert ev is not None, f"{kind} not in {subject}"
        return ev.payload


async def test_orange_rainstorm_callout_broadcast_and_the_proposal_accepted_by_link(dev_env, db_url, platform):
    with session_scope() as s:
        people = response_district(s)
    leader = people["leading_leader"]
    settings = get_settings()
    tq = settings.task_queue = f"e2e-{uuid.uuid4().hex[:6]}"
    app = create_app(temporal_client=dev_env.client)
    auth = {"Authorization": "Bearer e2e-admin"}
    async with build_worker(dev_env.client, task_queue=tq), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://test", headers=auth) as api:
        r = await api.post("/api/warnings", content=CAP.format(ident=f"qx-{uuid.uuid4().hex[:8]}").encode(),
                           headers={"Content-Type": "application/cap+xml"})
        assert r.status_code == 201, r.text
        body = r.json()
        assert body["level"] == "orange" and body["action"] == "callout_started" and body["publication_id"] is None
        cid, wid = body["callout_id"], body["warning_id"]

        # 应急广播: the fake platform got one signed request for exactly the warning's two towns
        await poll(lambda: _ready(platform.posts), lambda p: p, what="the broadcast request")
        [post] = platform.posts
        assert sorted(post.body["areas"]) == TOWNS and post.body["level"] == "orange" and "暴雨" in post.body["text"]
        assert not platform.refused
        accepted = await poll(lambda: _ready(kinds(cid)), lambda k: "broadcast.accepted" in k, what="accepted")
        assert "broadcast.requested" in accepted
        receipt = await platform.push_receipt(api, "/api/webhooks/broadcast", post.request_id,
                                              {t: "played" for t in TOWNS})
        assert receipt.status_code == 200, receipt.text
        played = await poll(lambda: _ready([k for k in kinds(cid) if k == "broadcast.played"]),
                            lambda k: len(k) == 2, what="the receipt in the trail")
        assert played

        # 预警和响应一体化: the flood plan's Ⅳ级 is proposed to the leading leader on duty, with a link
        pid = f"{wid}-flood_control"
        subject = proposal_subject(pid)
        sms = await poll(lambda: _ready(sent(subject, leader)), lambda m: m, what="the proposal's SMS")
        text = sms[0].body
        assert text.startswith("【响应建议】") and "Ⅳ级应急响应" in text
        short = re.search(r"http://test(/a/[A-Za-z0-9_-]+)", text)
        assert short, text
        view = (await api.get(f"/api/proposals/{pid}")).json()
        assert view["status"] == "proposed" and view["level"] == "IV" and view["warning"]["warning_id"] == wid

        # the leader opens the short link on the phone and accepts
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as phone:
            hop = await phone.get(short.group(1))
            assert hop.status_code == 303 and "/proposal/" in hop.headers["location"]
            link = httpx.URL(hop.headers["location"]).path
            page = await phone.get(link)
            assert page.status_code == 200 and "Ⅳ级应急响应" in page.text
            done = await phone.post(link, data={"decision": "accept"})
            assert done.status_code == 200 and 'data-decision="accepted"' in done.text, done.text

        decided = await poll(lambda: api.get(f"/api/proposals/{pid}"), lambda r: r.json()["activation_id"],
                             what="the activation started")
        decided = decided.json()
        assert decided["status"] == "accepted" and decided["decided_via"] == "link" and decided["decided_by"] == leader
        aid = decided["activation_id"]
        activation = await poll(lambda: api.get(f"/api/activations/{aid}"), lambda r: r.status_code == 200
                                and r.json()["status"] == "active", what="the activation running")
        activation = activation.json()
        assert activation["plan_id"] == "flood_control" and activation["level"] == "IV"
        started = payload(activation_subject(aid), "activation.started")
        assert started["warning_id"] == wid and started["proposal_id"] == pid
        incident = (await api.get(f"/api/incidents/{decided['incident_id']}")).json()
        assert cid in payload(incident["id"], "incident.received")["related"]
        assert "proposal.accepted" in kinds(subject) and "proposal.declined" not in kinds(subject)

        # a yellow warning through the same API: published, nobody called
        yellow = CAP.format(ident=f"qx-{uuid.uuid4().hex[:8]}").replace("橙色", "黄色").encode()
        r = await api.post("/api/warnings", content=yellow, headers={"Content-Type": "application/cap+xml"})
        assert r.status_code == 201, r.text
        pub = r.json()
        assert pub["level"] == "yellow" and pub["publication_id"] and pub["callout_id"] is None
        msgs = await poll(lambda: _ready(_outbox(pub["publication_id"])), lambda m: m, what="the publication's sends")
        assert {m.channel for m in msgs} <= {"sms", "im"} and not any(m.reply_code for m in msgs)
        with session_scope(write=False) as s:
            assert verify(s).ok


async def _ready(value):
    return value


def _outbox(subject: str) -> list[OutboxMessage]:
    with session_scope(write=False) as s:
        return list(s.exec(select(OutboxMessage).where(OutboxMessage.subject == subject)))
