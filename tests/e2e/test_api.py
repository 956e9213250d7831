"""The API's contract: authentication, roles, and a clear 4xx for every kind of bad input."""
from __future__ import annotations

import uuid
from pathlib import Path

import httpx
import pytest

from api.app import create_app
from config import get_settings
from store.auth import create_token
from store.db import session_scope
from tests.factories import small_district
from tests.workflows.callout_helpers import terminate_callouts
from worker import build_worker

CAP_DIR = Path(__file__).resolve().parents[1] / "fixtures" / "cap"


@pytest.fixture
async def api(module_time_env, db_url, monkeypatch):
    monkeypatch.setenv("YINGJI_RUN_SCHEDULER", "false")
    get_settings.cache_clear()
    settings = get_settings()
    settings.task_queue = f"api-{uuid.uuid4().hex[:6]}"
    with session_scope() as s:
        small_district(s)
        tokens = {role: create_token(s, role, label=role) for role in
                  ("duty_staff", "duty_cadre", "duty_chief", "leading_leader", "commander", "supervisor", "admin")}
    app = create_app(temporal_client=module_time_env.client)
    async with build_worker(module_time_env.client, task_queue=settings.task_queue), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        client.tokens = tokens  # type: ignore[attr-defined]
        yield client
        await terminate_callouts(module_time_env.client)


def auth(api, role="duty_staff") -> dict:
    return {"Authorization": f"Bearer {api.tokens[role]}"}


async def test_healthz_needs_no_token(api):
    r = await api.get("/healthz")
    assert r.status_code in (200, 503) and "database" in r.json()


@pytest.mark.parametrize("path", ["/api/warnings", "/api/callouts", "/api/outbox", "/api/audit", "/api/duty/now",
                                  "/api/directory/persons"])
async def test_routes_need_a_token(api, path):
    r = await api.get(path)
    assert r.status_code == 401 and "bearer token" in r.json()["detail"]
    r = await api.get(path, headers={"Authorization": "Bearer yj_not-a-token"})
    assert r.status_code == 401 and "unknown" in r.json()["detail"]


async def test_roles_are_enforced(api):
    r = await api.get("/api/audit/verify", headers=auth(api, "duty_staff"))
    assert r.status_code == 403 and "duty_staff" in r.json()["detail"]
    r = await api.post("/api/warnings", json={"identifier": "x"}, headers=auth(api, "supervisor"))
    assert r.status_code == 403
    assert (await api.get("/api/audit/verify", headers=auth(api, "supervisor"))).json()["ok"] is True


@pytest.mark.parametrize("path", sorted((CAP_DIR / "valid").glob("*.xml")) + sorted((CAP_DIR / "made").glob("*.xml")),
                         ids=lambda p: p.name)
async def test_every_valid_cap_document_is_accepted(api, path):
    """The public samples have long expired: refused as such (409) unless the request accepts it."""
    from datetime import UTC, datetime

    from api.services.warnings import from_cap

    doc = from_cap(path.read_bytes())
    headers = {**auth(api), "Content-Type": "application/cap+xml"}
    if doc.msg_type != "Cancel" and doc.expires and doc.expires < datetime.now(UTC):
        r = await api.post("/api/warnings", content=path.read_bytes(), headers=headers)
        assert r.status_code == 409 and "失效时间" in r.json()["detail"], r.text
    r = await api.post("/api/warnings", content=path.read_bytes(), headers=headers, params={"accept_stale": "true"})
    assert r.status_code == 201, r.text
    assert set(r.json()) >= {"warning_id", "level", "callout_id"}


@pytest.mark.parametrize("path", sorted((CAP_DIR / "invalid").glob("*.xml")), ids=lambda p: p.name)
async def test_every_invalid_cap_document_is_refused_with_why(api, path):
    r = await api.post("/api/warnings", content=path.read_bytes(), headers={**auth(api), "Content-Type": "application/xml"})
    assert r.status_code == 422 and "CAP document refused" in r.json()["detail"]


async def test_below_orange_is_recorded_without_a_callout(api):
    r = await api.post("/api/warnings", headers=auth(api), json={"identifier": "y1", "level": "黄色", "event": "暴雨",
                                                                 "areas": ["330110001"]})
    assert r.status_code == 201 and r.json()["level"] == "yellow" and r.json()["callout_id"] is None


async def test_update_and_cancel_reach_the_running_callout(api):
    first = (CAP_DIR / "made" / "rain_orange_two_towns.xml").read_bytes()
    h = {**auth(api), "Content-Type": "application/cap+xml"}
    r = await api.post("/api/warnings", content=first, headers=h)
    cid = r.json()["callout_id"]
    assert cid
    up = await api.post("/api/warnings", content=(CAP_DIR / "made" / "rain_update_to_red.xml").read_bytes(), headers=h)
    assert up.status_code == 201 and up.json()["callout_id"] == cid and up.json()["action"] == "updated"
    cancel = await api.post("/api/warnings", content=(CAP_DIR / "made" / "rain_cancel.xml").read_bytes(), headers=h)
    assert cancel.json()["action"] == "canceled" and cancel.json()["callout_id"] == cid


@pytest.mark.parametrize("body, ctype, status, words", [
    (b"{not json", "application/json", 400, "not valid JSON"),
    (b"[1, 2]", "application/json", 422, "JSON object"),
    (b'{"level": "red"}', "application/json", 422, "identifier"),
    (b'{"identifier": "a", "level": "purple"}', "application/json", 422, "not a warning level"),
    (b'{"identifier": "a", "msg_type": "Nonsense"}', "application/json", 422, "msg_type"),
    (b"hello", "text/plain", 415, "not accepted"),
    (b"<alert>", "application/cap+xml", 422, "not_xml"),
])
async def test_bad_warnings_get_a_4xx_that_says_why(api, body, ctype, status, words):
    r = await api.post("/api/warnings", content=body, headers={**auth(api), "Content-Type": ctype})
    assert r.status_code == status and words in r.json()["detail"], r.text


async def test_oversized_bodies_are_refused(api):
    r = await api.post("/api/warnings", content=b"{" + b" " * 3_000_000 + b"}",
                       headers={**auth(api), "Content-Type": "application/json"})
    assert r.status_code == 413


@pytest.mark.parametrize("method, path, json", [
    ("get", "/api/callouts/nope", None),
    ("post", "/api/callouts/nope/targets/p1/ack", {"note": "电话确认"}),
    ("post", "/api/callouts/nope/cancel", {"reason": "x"}),
    ("get", "/api/warnings/nope", None),
    ("get", "/api/directory/persons/nope", None),
    ("post", "/api/simulator/messages/999999", {"outcome": "reply"}),
])
async def test_unknown_things_are_404(api, method, path, json):
    r = await getattr(api, method)(path, headers=auth(api, "duty_chief"), **({"json": json} if json else {}))
    assert r.status_code == 404 and r.json()["detail"]


@pytest.mark.parametrize("method, path, kwargs", [
    ("get", "/api/audit?since=yesterday", {}),
    ("get", "/api/callouts?limit=abc", {}),
    ("get", "/api/duty/now?at=2026-07-01T08:00:00", {}),
    ("post", "/api/simulator/messages/abc", {"json": {"outcome": "reply"}}),
    ("post", "/api/simulator/messages/1", {"json": {"outcome": "explode"}}),
    ("post", "/api/callouts/x/targets/p/ack", {"json": {}}),
])
async def test_malformed_parameters_are_422(api, method, path, kwargs):
    r = await getattr(api, method)(path, headers=auth(api, "duty_chief"), **kwargs)
    assert r.status_code == 422 and r.json()["detail"], r.text


async def test_ack_link_tampered_expired_and_reused(api):
    from store.links import make_ack_token

    bad = await api.post("/ack/not-a-token")
    assert bad.status_code == 403
    token = make_ack_token(get_settings().signing_key(), "callout-x", "p-secretary")
    forged = token[:-3] + ("AAA" if not token.endswith("AAA") else "BBB")
    assert (await api.post(f"/ack/{forged}")).status_code == 403
    assert (await api.get(f"/ack/{token}")).status_code == 200
    assert (await api.post(f"/ack/{token}")).status_code == 404  # nobody was called in that call-out


async def test_a_flash_flood_warning_headlined_by_rain_calls_the_flash_flood_plan(api):
    """Issue 20: the CAP event decides before the headline; "山洪" headlined "受强降雨影响…" is not the rain plan."""
    from store.warnings import Warning

    cap = (CAP_DIR / "made" / "rain_orange_two_towns.xml").read_text(encoding="utf-8")
    cap = (cap.replace("<event>暴雨</event>", "<event>山洪</event>")
              .replace("青溪区气象台发布暴雨橙色预警信号", "受强降雨影响,青溪区发布山洪灾害橙色预警")
              .replace("<identifier>", "<identifier>flash-"))
    r = await api.post("/api/warnings", content=cap.encode(), headers={**auth(api), "Content-Type": "application/cap+xml"})
    assert r.status_code == 201 and r.json()["callout_id"], r.text
    js = await api.post("/api/warnings", headers=auth(api), json={
        "identifier": "flash-json", "level": "红色", "event": "山洪", "areas": ["330110001"],
        "headline": "受强降雨影响…山洪灾害红色预警", "event_codes": {"GB/T 28592": ["unknown"]}})
    assert js.status_code == 201, js.text
    with session_scope(write=False) as s:
        assert s.get(Warning, r.json()["warning_id"]).category == "flash_flood_geohazard"
        assert s.get(Warning, js.json()["warning_id"]).category == "flash_flood_geohazard"


def test_a_cap_alerts_event_codes_reach_the_plan_choice():
    from api.services.warnings import from_cap

    cap = (CAP_DIR / "made" / "rain_orange_two_towns.xml").read_text(encoding="utf-8").replace(
        "</certainty>", "</certainty><eventCode><valueName>GB/T 28592</valueName><value>11B03</value></eventCode>")
    assert from_cap(cap.encode()).event_codes == {"GB/T 28592": ["11B03"]}


async def test_the_console_preview_chooses_the_plan_as_the_intake_does(api):
    from datetime import UTC, datetime

    from api.services.preview import preview
    from api.services.warnings import WarningIn, from_json
    from definitions.loader import load_library

    w = from_json(WarningIn(identifier="flash-preview", level="红色", event="山洪", areas=["330110001"],
                            headline="受强降雨影响…山洪灾害红色预警"))
    with session_scope(write=False) as s:
        out = preview(s, load_library(get_settings().definitions_dir), w, datetime.now(UTC))
    assert out["plan"].id == "flash_flood_geohazard"
