"""The call-out with YINGJI_GATEWAY_IM=dingtalk: the IM step is a personal work notification 工作通知 at the fake
DingTalk, to each person's directory dingtalk_user_id; its button (the signed link) acknowledges; its read status
(已读) is recorded as delivered and is never an acknowledgement; the workflows run on the time-skipping server."""
from __future__ import annotations

import uuid
from types import SimpleNamespace

import httpx
import pytest
from sqlmodel import select
from temporalio.service import RPCError

from api.app import create_app
from api.services.dingtalk_reads import poll_read_status
from store.callouts import Callout, CalloutTarget
from store.db import session_scope
from store.directory import Person
from tests.factories import small_district
from tests.helpers import console_login
from tests.fakes.dingtalk_server import FakeDingTalk, use_fake_dingtalk
from tests.workflows.callout_helpers import callout_input, outbox, start, targets, wait_for
from worker import build_worker

PUBLIC = "https://yingji.example.gov.cn"


@pytest.fixture(scope="module")
def env(module_time_env):
    """A time-skipping server of this module's own (tests/conftest.py): call-outs left mid-way hold no one
    else's clock."""
    return module_time_env


@pytest.fixture(scope="module")
def fake():
    with FakeDingTalk() as f:
        yield f


@pytest.fixture
async def flow(env, fake, db_url, monkeypatch):
    use_fake_dingtalk(monkeypatch, fake, public_base_url=PUBLIC)
    monkeypatch.setenv("YINGJI_ADMIN_TOKEN", "dingtalk-admin")
    with session_scope() as s:
        people = small_district(s)
        for n, person in enumerate(s.exec(select(Person))):
            person.dingtalk_user_id = f"dt{n:04d}"
    tq = f"tq-{uuid.uuid4().hex[:8]}"
    app = create_app(temporal_client=env.client)
    async with build_worker(env.client, task_queue=tq), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url=PUBLIC) as http:
        yield SimpleNamespace(env=env, tq=tq, people=people, http=http, fake=fake, app=app)
        with session_scope(write=False) as s:
            ids = list(s.exec(select(Callout.id)))
            ids += [f"{c}/shard-{n}" for c, n in s.exec(select(CalloutTarget.callout_id, CalloutTarget.shard).distinct())]
        for wid in ids:
            try:
                await env.client.get_workflow_handle(wid).terminate("test over")
            except RPCError:
                pass


def userid(person_id: str) -> str:
    with session_scope(write=False) as s:
        return s.get(Person, person_id).dingtalk_user_id


async def notification(flow, cid: str, person: str):
    [msg] = await wait_for(lambda: [m for m in outbox(cid, person_id=person, channel="im") if m.provider_id],
                           what="the work notification")
    found = [n for n in flow.fake.notifications.values() if n.userid == userid(person)]
    assert len(found) == 1, (msg.to, msg.gateway, msg.provider_id, userid(person), flow.fake.notifications)
    [n] = found
    return msg, n


async def test_the_button_of_the_work_notification_acknowledges(flow):
    inp = callout_input()
    await start(flow.env.client, flow.tq, inp)
    head = flow.people["330110001.head"]  # department and town heads: SMS and IM first
    msg, n = await notification(flow, inp.callout_id, head)
    assert msg.to == userid(head) and msg.gateway == "dingtalk" and n.delivered
    assert n.msg["msgtype"] == "action_card" and n.button == msg.ack_url and "/ack/" in n.button
    page = await flow.http.get(n.button)
    assert page.status_code == 200
    done = await flow.http.post(n.button)
    assert done.status_code == 200, done.text
    await wait_for(lambda: targets(inp.callout_id)[head].state == "acknowledged", what="ack by the card's button")
    assert targets(inp.callout_id)[head].ack_channel == "link"


async def test_read_is_delivered_not_acknowledged(flow):
    inp = callout_input()
    await start(flow.env.client, flow.tq, inp)
    head = flow.people["330110001.head"]
    msg, n = await notification(flow, inp.callout_id, head)
    assert await poll_read_status(flow.env.client) == {}  # not read yet
    flow.fake.read(n.task_id)
    assert await poll_read_status(flow.env.client) == {msg.provider_id: "delivered"}
    assert outbox(inp.callout_id, provider_id=msg.provider_id)[0].status == "delivered"
    t = targets(inp.callout_id)[head]
    assert t.state != "acknowledged" and t.acknowledged_at is None
    web = await console_login(flow.app, "dingtalk-admin")  # the board's pane of that person says so
    try:
        pane = await web.get(f"/console/callouts/{inp.callout_id}/targets/{t.id}")
    finally:
        await web.aclose()
    assert pane.status_code == 200 and "钉钉已读" in pane.text
    assert pane.text.count("钉钉已读") == 1  # the IM message only, not the SMS
