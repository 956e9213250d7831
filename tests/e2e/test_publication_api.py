"""Publication below orange through the API (issue 20): `POST /api/warnings` with a yellow warning answers 201
with its publication, the outbox holds its messages, `GET /api/publications/{id}` and the console's page count
them (delivery rate, who failed by name), the desk links to it."""
from __future__ import annotations

import uuid

import httpx
import pytest
from sqlmodel import select

from api.app import create_app
from config import get_settings
from store.auth import create_token
from store.db import session_scope
from store.messages import OutboxMessage
from store.warnings import Warning
from tests.factories import small_district
from tests.helpers import console_login, console_post
from tests.workflows.callout_helpers import idle, report, terminate_callouts
from worker import build_worker


@pytest.fixture
async def api(env, db_url, monkeypatch):
    monkeypatch.setenv("YINGJI_RUN_SCHEDULER", "false")
    get_settings.cache_clear()
    settings = get_settings()
    settings.task_queue = f"pub-{uuid.uuid4().hex[:6]}"
    with session_scope() as s:
        people = small_district(s)
        token = create_token(s, "duty_staff", label="duty")
        sup = create_token(s, "supervisor", label="sup")
    app = create_app(temporal_client=env.client)
    async with build_worker(env.client, task_queue=settings.task_queue), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://test",
            headers={"Authorization": f"Bearer {token}"}) as client:
        web, sup_web = await console_login(app, token), await console_login(app, sup)
        client.env, client.people, client.web, client.sup = env, people, web, sup_web  # type: ignore[attr-defined]
        try:
            yield client
        finally:
            await web.aclose()
            await sup_web.aclose()
            await terminate_callouts(env.client)


def _outbox(subject: str) -> list[OutboxMessage]:
    with session_scope(write=False) as s:
        return list(s.exec(select(OutboxMessage).where(OutboxMessage.subject == subject).order_by(OutboxMessage.id)))


YELLOW = {"identifier": "api-y1", "sender": "qx-meteo", "level": "黄色", "event": "暴雨", "headline": "暴雨黄色预警",
          "areas": ["330110001"], "area_descs": ["第1街道"]}


async def test_a_yellow_warning_is_published_and_counted(api):
    r = await api.post("/api/warnings", json=YELLOW)
    assert r.status_code == 201, r.text
    body = r.json()
    pid = body["publication_id"]
    assert pid == f"publication-{body['warning_id']}" and body["callout_id"] is None and body["action"] == "published"
    with session_scope(write=False) as s:
        assert s.get(Warning, body["warning_id"]).publication_id == pid

    await idle(api.env.client.get_workflow_handle(pid), what="the publication to have sent")
    sent = _outbox(pid)
    assert len(sent) == 14 and {m.channel for m in sent} == {"sms", "im"}  # 7 persons × SMS and IM
    assert all(m.reply_code is None for m in sent)

    again = await api.post("/api/warnings", json=YELLOW)  # the same warning again: one publication
    assert again.status_code == 200 and again.json()["duplicate"] and again.json()["publication_id"] == pid
    assert len(_outbox(pid)) == 14

    failing = next(m for m in sent if m.person_id == api.people["330110001001.resp"] and m.channel == "sms")
    delivered = [m for m in sent if m.channel == "sms" and m.id != failing.id]
    for m in delivered:
        await report(api.env.client, m, "delivered")
    await report(api.env.client, failing, "undelivered")

    got = (await api.get(f"/api/publications/{pid}")).json()  # the reports updated the outbox as they came
    c = got["counts"]
    assert c["sent"] == 14 and c["rate"] == round(len(delivered) / 14, 4) and c["persons"] == 7
    assert c["failed_list"][0]["person_id"] == api.people["330110001001.resp"]
    assert c["per_tier"]["villages"]["failed"] == 1 and c["per_tier"]["departments"]["persons"] == 3

    page = await api.web.get(f"/console/publications/{pid}")
    assert page.status_code == 200
    assert "送达率" in page.text and f"{round(len(delivered) / 14 * 100)}%" in page.text
    assert "社区1-1防汛责任人" in page.text.split('id="pub-failed"')[1].split("</ul>")[0]  # failed, by name
    desk = await api.web.get("/console/desk")
    assert f'/console/publications/{pid}' in desk.text

    replay = await api.sup.get(f"/console/replay/{pid}")  # a supervisor replays the publication's trail
    assert replay.status_code == 200 and "预警发布开始" in replay.text, replay.text[:2000]
    assert (await api.get("/api/publications/publication-Wnothing")).status_code == 404
    assert (await api.web.get("/console/publications/publication-Wnothing")).status_code == 404


async def test_the_console_previews_and_starts_a_publication(api):
    form = {"mode": "form", "event": "暴雨", "level": "yellow", "towns": ["330110001"]}
    preview = await console_post(api.web, "/console/callouts/preview", form)
    assert preview.status_code == 200 and "不叫应;将发布给7人(无需回复)" in preview.text, preview.text[-1500:]
    started = await console_post(api.web, "/console/callouts/start", form)
    assert started.status_code == 303 and started.headers["location"].startswith("/console/publications/publication-W")
    pid = started.headers["location"].rsplit("/", 1)[1]
    await idle(api.env.client.get_workflow_handle(pid), what="the publication to have sent")
    assert len(_outbox(pid)) == 14
    page = await api.web.get(started.headers["location"])
    assert page.status_code == 200 and "预警发布" in page.text and 'data-tier="villages"' in page.text
