"""End to end on the Temporal dev server, through the API, with the simulator gateway.

An orange heavy-rain CAP alert for two towns reaches exactly the persons of the plan;
half acknowledge (signed link, SMS reply, keypress); the rest are escalated per the
policy; the summary and the audit trail agree with what happened.
"""
from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from sqlmodel import select

from api.app import create_app
from config import get_settings
from store.audit import AuditEvent, verify
from store.db import session_scope
from store.targets import resolve_targets
from tests.factories import small_district
from tests.helpers import CAP, as_delivered, poll, relay_in_seconds, use_definitions
from worker import build_worker

@pytest.fixture
def fast_definitions(tmp_path: Path, monkeypatch) -> Path:
    """The shipped definitions with every call-out wait shortened to seconds, so real time suffices."""
    def edit(path: Path, text: str) -> str:
        return relay_in_seconds(re.sub(r"wait_ack: \d+m", "wait_ack: 3s", text)) if path.parts[0] == "callout" else text

    return use_definitions(tmp_path, monkeypatch, edit, NIGHT_START="00:00", NIGHT_END="00:00", ADMIN_TOKEN="e2e-admin")


async def test_orange_cap_alert_end_to_end(dev_env, db_url, fast_definitions):
    with session_scope() as s:
        people = small_district(s, missing_deputy=("330110002.deputy",))
    settings = get_settings()
    tq = settings.task_queue = f"e2e-{uuid.uuid4().hex[:6]}"
    app = create_app(temporal_client=dev_env.client)
    auth = {"Authorization": "Bearer e2e-admin"}
    async with build_worker(dev_env.client, task_queue=tq), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://test", headers=auth) as api:
        ident = f"qx-{uuid.uuid4().hex[:8]}"
        resp = await api.post("/api/warnings", content=CAP.format(ident=ident).encode(),
                              headers={"Content-Type": "application/cap+xml"})
        assert resp.status_code == 201, resp.text
        body = resp.json()
        assert body["level"] == "orange" and body["callout_id"]
        cid = body["callout_id"]
        # the same alert again is a no-op
        again = await api.post("/api/warnings", content=CAP.format(ident=ident).encode(),
                               headers={"Content-Type": "application/cap+xml"})
        assert again.status_code == 200 and again.json()["callout_id"] == cid and again.json()["duplicate"]

        # exactly the persons of the plan
        from definitions.loader import load_or_raise

        plan = load_or_raise(fast_definitions).of("callout")["heavy_rain"].model
        with session_scope(write=False) as s:
            expected, _ = resolve_targets(s, plan, ["330110001", "330110002"],
                                          [t.id for t in plan.tiers_for(plan.min_level)], datetime.now(UTC))
        expected_people = {t["person"]["person_id"] for t in expected}
        c = await poll(lambda: _get(api, f"/api/callouts/{cid}"), lambda c: c and c["total"] == len(expected),
                       what="targets resolved")
        assert {t["person_id"] for t in c["targets"]} == expected_people
        assert people["330110003.head"] not in expected_people  # a town outside the warning area

        outbox = await poll(lambda: _get(api, f"/api/outbox?subject={cid}"),
                            lambda m: m and {x["person_id"] for x in m if x["channel"] == "sms" and x["provider_id"]} >= expected_people,
                            what="first SMS to everyone")
        sms = {m["person_id"]: m for m in outbox if m["channel"] == "sms"}
        ordered = sorted(expected_people)
        by_link, by_reply, by_key = ordered[0:2], ordered[2:4], ordered[4:6]
        for pid in by_link:  # the signed link, as a phone would open it
            path = httpx.URL(as_delivered(sms[pid]["id"]).ack_url).path
            assert (await api.get(path)).status_code == 200
            assert (await api.post(path)).status_code == 200
            assert (await api.post(path)).status_code == 409  # a link works once
        for pid in by_reply:
            r = await api.post(f"/api/simulator/messages/{sms[pid]['id']}", json={"outcome": "reply", "body": "收到"})
            assert r.status_code == 200 and r.json()["handled"] == "ack", r.text
        calls = await poll(lambda: _get(api, f"/api/outbox?subject={cid}&channel=voice"),
                           lambda m: m and {x["person_id"] for x in m if x["provider_id"]} >= set(by_key),
                           what="voice calls placed (not only claimed)")
        for pid in by_key:
            call = next(x for x in calls if x["person_id"] == pid)
            r = await api.post(f"/api/simulator/messages/{call['id']}", json={"outcome": "keypress", "digits": "1"})
            assert r.status_code == 200 and r.json()["handled"] == "ack", r.text

        acked = set(by_link + by_reply + by_key)
        final = await poll(lambda: _get(api, f"/api/callouts/{cid}"), lambda c: c and c["status"] != "running",
                           timeout=120, what="call-out to end")
        states = {t["person_id"]: t for t in final["targets"]}
        for pid in acked:
            assert states[pid]["state"] == "acknowledged"
        channels = {pid: states[pid]["ack_channel"] for pid in acked}
        assert {channels[p] for p in by_link} == {"link"} and {channels[p] for p in by_reply} == {"sms"}
        assert {channels[p] for p in by_key} == {"voice"}
        for pid in expected_people - acked:
            t = states[pid]
            assert t["state"] == "unreachable", t
            assert t["escalated_to"], f"{pid} was not escalated"
        summary = final["summary"]
        assert summary["acknowledged"] == len(acked) and summary["total"] == len(expected_people)
        assert {n["person_id"] for n in summary["never_answered"]} == expected_people - acked

        # the audit trail tells the same story, and its chain verifies
        with session_scope(write=False) as s:
            events = list(s.exec(select(AuditEvent).where(AuditEvent.subject == cid).order_by(AuditEvent.seq)))
            assert verify(s).ok
        kinds = [e.kind for e in events]
        assert kinds[0] == "warning.received" or "warning.received" in kinds
        for k in ("callout.started", "callout.plan_chosen", "callout.targets_resolved", "callout.sent",
                  "callout.escalated", "callout.summary", "callout.ended"):
            assert k in kinds, k
        acks = {e.payload["person_id"]: e.channel for e in events if e.kind == "callout.ack"}
        assert set(acks) == acked and all(acks[p] == channels[p] for p in acked)
        escalated = {e.payload["target"] for e in events if e.kind == "callout.escalated"}
        assert len(escalated) == len(expected_people - acked)
        sent = [e for e in events if e.kind in ("callout.sent", "relay.sent")]  # (到户到人: the villages relay)
        all_out = await _get(api, f"/api/outbox?subject={cid}&limit=5000")
        assert len(sent) == len([m for m in all_out if m["purpose"] != "summary"])  # every send recorded once
        assert any(m["purpose"] == "summary" and m["person_id"] == people["leading_leader"] for m in all_out)


async def _get(api: httpx.AsyncClient, path: str):
    r = await api.get(path)
    return r.json() if r.status_code == 200 else None
