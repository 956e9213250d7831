"""A warning's age at intake (issue 19.4): an expired warning is refused by POST /api/warnings (409, naming
sent and expires) unless the request accepts it; a CAP feed records it and calls nobody; every warning
records its age (the warning's meta and the audit event of its intake)."""
from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from api.app import create_app
from api.services.warnings import warning_id_for
from config import get_settings
from store.auth import create_token
from store.db import session_scope
from tests.factories import small_district
from tests.helpers import cap_at
from tests.workflows.callout_helpers import terminate_callouts
from worker import build_worker

SENDER = "qingxi-meteo@example.cn"  # the sender of tests.helpers.CAP


@pytest.fixture
async def api(module_time_env, db_url, monkeypatch):
    monkeypatch.setenv("YINGJI_RUN_SCHEDULER", "false")
    get_settings.cache_clear()
    settings = get_settings()
    settings.task_queue = f"age-{uuid.uuid4().hex[:6]}"
    with session_scope() as s:
        small_district(s)
        token = create_token(s, "duty_staff", label="duty")
        sup = create_token(s, "supervisor", label="sup")
    app = create_app(temporal_client=module_time_env.client)
    async with build_worker(module_time_env.client, task_queue=settings.task_queue), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://test",
            headers={"Authorization": f"Bearer {token}"}) as client:
        client.sup = {"Authorization": f"Bearer {sup}"}  # type: ignore[attr-defined]
        yield client
        await terminate_callouts(module_time_env.client)


def _events(subject: str, kind: str) -> list[dict]:
    from sqlmodel import select

    from store.audit import AuditEvent

    with session_scope(write=False) as s:
        return [e.payload for e in s.exec(select(AuditEvent).where(AuditEvent.subject == subject,
                                                                    AuditEvent.kind == kind))]


def _json_warning(ident: str, sent: datetime, expires: datetime | None, **more) -> dict:
    return {"identifier": ident, "sender": "test-meteo", "level": "blue", "event": "暴雨", "headline": "暴雨蓝色预警",
            "areas": ["330110001"], "sent": sent.isoformat(), "expires": expires.isoformat() if expires else None,
            **more}


async def test_an_expired_json_warning_is_refused_unless_accepted(api):
    now = datetime.now(UTC)
    ident = f"exp-{uuid.uuid4().hex[:8]}"
    body = _json_warning(ident, now - timedelta(hours=10), now - timedelta(hours=2))
    r = await api.post("/api/warnings", json=body)
    assert r.status_code == 409, r.text
    detail = r.json()["detail"]
    assert "失效" in detail and "发布时间" in detail and "expires" in detail and "accept_stale" in detail
    wid = warning_id_for("test-meteo", ident)
    assert (await api.get(f"/api/warnings/{wid}")).status_code == 404  # nothing stored
    refused = _events(wid, "warning.refused")
    assert refused and refused[0]["reason"] == "expired" and refused[0]["age_s"] >= 10 * 3600 - 60

    r = await api.post("/api/warnings", json={**body, "accept_stale": True})
    assert r.status_code == 201, r.text
    row = (await api.get(f"/api/warnings/{wid}")).json()
    assert row["meta"]["age"]["expired"] is True and row["meta"]["accepted_stale"] is True
    assert 10 * 3600 - 60 <= row["meta"]["age"]["age_s"] <= 10 * 3600 + 600
    received = _events(wid, "warning.received")
    assert received and received[0]["accepted_stale"] is True and received[0]["age"]["expired"] is True


async def test_an_expired_cap_document_is_refused_unless_the_query_accepts_it(api):
    now = datetime.now(UTC)
    ident = f"exp-cap-{uuid.uuid4().hex[:8]}"
    doc = cap_at(ident, now - timedelta(days=2), now - timedelta(days=1)).encode()
    headers = {"content-type": "application/cap+xml"}
    r = await api.post("/api/warnings", content=doc, headers=headers)
    assert r.status_code == 409 and "失效时间" in r.json()["detail"], r.text
    r = await api.post("/api/warnings", content=doc, headers=headers, params={"accept_stale": "true"})
    assert r.status_code == 201 and r.json()["action"] == "callout_started", r.text
    received = _events(r.json()["callout_id"], "warning.received")
    assert received[0]["age"]["expired"] is True and received[0]["age_s"] >= 2 * 86400 - 60


async def test_an_old_warning_is_taken_with_its_age_recorded(api):
    """Old but not expired: REST takes it (the console is where a person confirms) and records how old it was."""
    sent = datetime.now(UTC) - timedelta(days=150)
    ident = f"old-{uuid.uuid4().hex[:8]}"
    r = await api.post("/api/warnings", json=_json_warning(ident, sent, None))
    assert r.status_code == 201, r.text
    wid = r.json()["warning_id"]
    row = (await api.get(f"/api/warnings/{wid}")).json()
    assert row["meta"]["age"]["old"] is True and row["meta"]["age"]["expired"] is False
    assert row["meta"]["age"]["age_s"] >= 150 * 86400 - 60
    event = _events(wid, "warning.received")[0]
    assert event["age_s"] >= 150 * 86400 - 60 and event["age"]["old"] is True and event["accepted_stale"] is False


async def test_an_expired_cap_from_a_feed_is_recorded_and_calls_nobody(api, monkeypatch, module_time_env):
    import api.feeds as feeds

    now = datetime.now(UTC)
    ident = f"feed-exp-{uuid.uuid4().hex[:8]}"
    doc = cap_at(ident, now - timedelta(hours=30), now - timedelta(hours=6)).encode()

    async def documents(_http, _source):
        return [("http://feed.test/1.xml", doc)]

    async def temporal():
        return module_time_env.client

    monkeypatch.setattr(feeds, "fetch_cap_documents", documents)
    settings = get_settings().model_copy(update={"cap_feeds": ["http://feed.test/rss"]})
    counts = await feeds.poll_once(settings, temporal)
    assert counts == {"documents": 1, "new": 1, "refused": 0}
    wid = warning_id_for(SENDER, ident)
    row = (await api.get(f"/api/warnings/{wid}")).json()
    assert row["callout_id"] is None and row["source"].startswith("feed:")
    assert row["meta"]["age"]["expired"] is True
    event = _events(wid, "warning.received")[0]
    assert event["action"] == "recorded" and event["age_s"] >= 30 * 3600 - 60
    assert (await api.get("/api/callouts")).json() == []  # nobody called
