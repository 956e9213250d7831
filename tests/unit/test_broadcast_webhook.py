"""应急广播: the platform's receipts at `POST /api/webhooks/broadcast` (unsigned, badly signed, stale or replayed:
403 and nothing recorded; signed: recorded on the subject's trail), and the http gateway against the local fake
platform (signed requests, a refusal is not retried)."""
from __future__ import annotations

import json
import time
from types import SimpleNamespace

import httpx
import pytest
from pydantic import SecretStr

from activities.gateways.broadcast import BroadcastError, BroadcastRequest, HttpBroadcast, SIG_HEADER, TS_HEADER, sign
from config import get_settings
from store import broadcasts
from store.audit import AuditEvent
from store.db import session_scope
from tests.fakes.broadcast_platform import FakeBroadcastPlatform

SECRET = "receipt-secret"
URL = "/api/webhooks/broadcast"
RID, TASK, SUBJECT = "callout-x/broadcast-0-alert", "T-1", "callout-x"


@pytest.fixture
async def api(db_url, monkeypatch):
    monkeypatch.setenv("YINGJI_RUN_SCHEDULER", "false")
    monkeypatch.setenv("YINGJI_BROADCAST_SECRET", SECRET)
    get_settings.cache_clear()
    with session_scope() as s:
        broadcasts.open_request(s, request_id=RID, subject=SUBJECT, workflow_id=SUBJECT, warning_id="W1",
                                purpose="alert", level="orange", drill=False, text="各位居民请注意:暴雨橙色预警。",
                                repeat=2, towns={"330110001": "330110001", "330110002": "QX-2"})
        broadcasts.record_accepted(s, RID, TASK, "accepted", False)
    from api.app import create_app

    app = create_app(temporal_client=object())  # type: ignore[arg-type]  (a receipt never reaches Temporal)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://yingji.test") as http:
        yield http
    get_settings.cache_clear()


def receipt(**statuses: str) -> bytes:
    return json.dumps({"task_id": TASK, "results": [{"area": a.replace("_", "-"), "terminal": f"{a}-T1", "status": st}
                                                    for a, st in statuses.items()]}).encode()


def headers(body: bytes, secret: str = SECRET, at: float | None = None) -> dict[str, str]:
    ts = str(int(at if at is not None else time.time()))
    return {TS_HEADER: ts, SIG_HEADER: sign(secret, ts, body), "content-type": "application/json"}


def trail(kind: str | None = None) -> list[AuditEvent]:
    from sqlmodel import select

    with session_scope(write=False) as s:
        stmt = select(AuditEvent).where(AuditEvent.subject == SUBJECT)
        return [e for e in s.exec(stmt.order_by(AuditEvent.seq)) if kind is None or e.kind == kind]


def area_states() -> dict[str, str]:
    with session_scope(write=False) as s:
        return {a.town_id: a.status for a in broadcasts.of_request(s, RID)}


async def test_refused_unless_signed_fresh_and_new(api):
    body = receipt(**{"330110001": "played"})
    before = len(trail())
    cases = {
        "unsigned": {"content-type": "application/json"},
        "bad signature": headers(body, secret="not-the-secret"),
        "stale": headers(body, at=time.time() - 3600),
        "from the future": headers(body, at=time.time() + 3600),
        "timestamp not a number": {**headers(body), TS_HEADER: "yesterday"},
        "signature of another body": headers(receipt(**{"330110001": "failed"})),
    }
    for name, hdrs in cases.items():
        got = await api.post(URL, content=body, headers=hdrs)
        assert got.status_code == 403, (name, got.status_code, got.text)
    assert len(trail()) == before and area_states() == {"330110001": "accepted", "330110002": "accepted"}

    good = headers(body)
    first = await api.post(URL, content=body, headers=good)
    assert first.status_code == 200, first.text
    assert first.json()["subject"] == SUBJECT
    replayed = await api.post(URL, content=body, headers=good)  # the same signed request again, inside the window
    assert replayed.status_code == 403 and "replayed" in replayed.text
    [played] = trail("broadcast.played")
    assert played.payload["town_id"] == "330110001" and played.payload["task_id"] == TASK
    assert area_states() == {"330110001": "played", "330110002": "accepted"}


async def test_receipts_per_terminal_set_each_towns_state(api):
    got = await api.post(URL, content=(b := receipt(**{"330110001": "played", "QX_2": "failed"})), headers=headers(b))
    assert got.status_code == 200, got.text
    assert area_states() == {"330110001": "played", "330110002": "failed"}
    # a second terminal of town 2 played: the town is partly covered
    body = json.dumps({"request_id": RID, "results": [{"area": "QX-2", "terminal": "QX-2-T9", "status": "played"}]}).encode()
    assert (await api.post(URL, content=body, headers=headers(body))).status_code == 200
    assert area_states()["330110002"] == "partial"
    assert [e.payload["terminal"] for e in trail("broadcast.failed")] == ["QX_2-T1"]
    assert len(trail("broadcast.played")) == 2


async def test_signed_but_wrong_is_named(api):
    for body, status, word in [
        (b"not json", 422, "JSON"),
        (json.dumps({"results": [{"area": "330110001", "status": "played"}]}).encode(), 422, "task_id"),
        (json.dumps({"task_id": TASK, "results": [{"area": "330110001", "status": "maybe"}]}).encode(), 422, "status"),
        (json.dumps({"task_id": "T-unknown", "results": [{"area": "330110001", "status": "played"}]}).encode(), 404,
         "T-unknown"),
        (json.dumps({"task_id": TASK, "results": [{"area": "999", "status": "played"}]}).encode(), 404, "999"),
    ]:
        got = await api.post(URL, content=body, headers=headers(body))
        assert got.status_code == status and word in got.text, (body, got.status_code, got.text)
    assert trail("broadcast.played") == [] and trail("broadcast.failed") == []


async def test_no_secret_configured_refuses_everything(api, monkeypatch):
    monkeypatch.delenv("YINGJI_BROADCAST_SECRET")
    get_settings.cache_clear()
    body = receipt(**{"330110001": "played"})
    got = await api.post(URL, content=body, headers=headers(body))
    assert got.status_code == 403 and "BROADCAST_SECRET" in got.text


def test_secret_is_masked_by_config(monkeypatch):
    monkeypatch.setenv("YINGJI_BROADCAST_SECRET", "s3cret")
    get_settings.cache_clear()
    try:
        shown = get_settings().masked()
        assert shown["broadcast_secret"] == "********" and shown["broadcast_gateway"] == "simulator"
    finally:
        get_settings.cache_clear()


# ------------------------------------------------------------------ the http gateway against the fake platform


def gateway(fake: FakeBroadcastPlatform, secret: str | None = None) -> HttpBroadcast:
    return HttpBroadcast(SimpleNamespace(broadcast_url=fake.base_url, broadcast_secret=SecretStr(secret or fake.secret)))


REQ = BroadcastRequest(request_id="r-1", areas=["330110001"], text="各位居民请注意", repeat=2, level="orange", drill=False)


async def test_gateway_signs_and_asks_before_posting_again():
    with FakeBroadcastPlatform() as fake:
        first = await gateway(fake).play(REQ)
        assert first.task_id and not first.asked and fake.refused == []
        again = await gateway(fake).play(REQ, maybe_sent=True)  # an earlier try may have reached it
        assert again.task_id == first.task_id and again.asked
        assert len(fake.posts_of("r-1")) == 1 and [a.request_id for a in fake.asks] == ["r-1"]


async def test_gateway_refused_is_not_retried():
    with FakeBroadcastPlatform() as fake:
        with pytest.raises(BroadcastError) as err:
            await gateway(fake, secret="wrong").play(REQ)
        assert err.value.retry is False and "401" in str(err.value) and fake.refused == ["bad signature"]
        assert fake.posts == []


async def test_gateway_unreachable_is_retried():
    fake = FakeBroadcastPlatform()  # never started: nothing listens on its port
    with pytest.raises(BroadcastError) as err:
        await gateway(fake).play(REQ)
    assert err.value.retry is True


async def test_two_towns_on_one_platform_area_both_follow_its_receipt(api):
    with session_scope() as s:
        broadcasts.open_request(s, request_id="shared", subject=SUBJECT, workflow_id=SUBJECT, warning_id="W1",
                                purpose="alert", level="red", drill=False, text="各位居民请注意", repeat=1,
                                towns={"330110001": "AREA-1", "330110003": "AREA-1"})
        broadcasts.record_accepted(s, "shared", "T-shared", "accepted", False)
    body = json.dumps({"task_id": "T-shared", "results": [{"area": "AREA-1", "status": "played"}]}).encode()
    assert (await api.post(URL, content=body, headers=headers(body))).status_code == 200
    with session_scope(write=False) as s:
        assert {a.town_id: a.status for a in broadcasts.of_request(s, "shared")} == {"330110001": "played",
                                                                                      "330110003": "played"}
    assert sorted(e.payload["town_id"] for e in trail("broadcast.played")) == ["330110001", "330110003"]
