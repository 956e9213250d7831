"""Issue 16, findings 13 and 14, and the replay cache.

13. An incident id named another kind's audit subject: `POST /api/incidents {"id": "callout-W…"}`
    appended `incident.received` to a call-out's chain (or took a future call-out's id). Every kind's
    subject is built by one function (workflows/subjects.py) and told apart by its form; an incident
    id in the form of another kind's is 422.
14. The case file went to roles refused on /api/audit, and whoever started the review chose the
    subjects in it through `related`. It is for /api/audit's roles only, and holds the call-outs the
    incident named when it was received (checked against the trail then), nothing a caller adds later.
"""
from __future__ import annotations

import uuid

import pytest
from sqlmodel import select

from store.audit import AuditChain, AuditEvent, NewEvent, append
from store.db import session_scope
from tests.helpers import poll
from tests.security.asgi import call
from tests.security.conftest import ADMIN_TOKEN
from workflows import subjects

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
INCIDENT = {"source": "12345", "category": "natural_disaster", "subtype": "内涝", "town_id": "330110001",
            "place": "第1街道青溪路地下通道", "summary": "暴雨致地下通道积水", "reporting_unit": "区应急管理局",
            "reporting_unit_id": "D01", "reporter": "值班员"}


def chain_length(subject: str) -> int:
    with session_scope(write=False) as s:
        chain = s.get(AuditChain, subject)
        return chain.length if chain else 0


async def red_callout(app) -> str:
    got = await call(app, "POST", "/api/warnings", headers=ADMIN, json={
        "identifier": f"R-{uuid.uuid4().hex[:8]}", "sender": "qx-weather", "level": "red", "event": "暴雨",
        "areas": ["330110001"]})
    assert got.status == 201 and got.json()["callout_id"], got.text
    cid = got.json()["callout_id"]
    async def length() -> int:
        return chain_length(cid)

    await poll(length, lambda n: n > 1, what="the call-out's trail")
    return cid


# ------------------------------------------------------------------ 13: subjects carry their kind


def test_each_kind_of_subject_is_told_apart_and_incident_ids_take_no_other_kinds_form():
    wid = "W0123456789ab"
    built = {"callout": subjects.callout_subject(wid), "warning": subjects.warning_subject(wid),
             "activation": subjects.activation_subject("INC-1-flood_control"), "review": subjects.review_subject("INC-1"),
             "incident": subjects.incident_subject("INC-20260701-ABC123")}
    assert {kind: subjects.kind_of(s) for kind, s in built.items()} == {k: k for k in built}
    assert subjects.activation_subject("activation/A1") == "activation/A1"
    for taken in [built["callout"], wid, "Callout-W0123456789ab", "drill-d1-manual-20260701T000000",
                  "handover-20260701T0000Z", "spotcheck-callout-W1", "freshness-20260701T0000", "activation-A1",
                  "review-INC-1", "incident-INC-1", "gateway", "_anchors", "review/INC-1", "a b"]:
        with pytest.raises(subjects.SubjectError):
            subjects.validate_incident_id(taken)
    for fine in ("INC-20260701-ABC123", "12345-0001", "W2026-07", "callout", "drill"):
        assert subjects.validate_incident_id(fine) == fine


@pytest.mark.parametrize("squat", ["callout-{wid}", "{wid}", "callout-Wfffffffffff0", "drill-flood-manual-x",
                                   "activation-INC-1-flood_control", "gateway"])
async def test_an_incident_cannot_take_another_kinds_subject(secured, squat):
    from api.services.warnings import warning_id_for

    cid = await red_callout(secured.app) if "{wid}" in squat else None
    wid = cid.removeprefix("callout-") if cid else warning_id_for("x", "y")
    iid = squat.format(wid=wid)
    got = await call(secured.app, "POST", "/api/incidents", headers=ADMIN, json={**INCIDENT, "id": iid})
    assert got.status == 422, got.text  # was: 201, and incident.received in the call-out's chain
    assert "id" in got.json()["detail"]
    with session_scope(write=False) as s:
        assert not list(s.exec(select(AuditEvent).where(AuditEvent.subject == iid,
                                                        AuditEvent.kind == "incident.received")))


async def test_an_id_whose_trail_is_another_kinds_is_409(secured):
    iid = f"LEGACY-{uuid.uuid4().hex[:6]}"  # an incident id's form, but a trail that is not an incident's
    with session_scope() as s:
        append(s, [NewEvent(subject=iid, kind="callout.started", step_id="started")])
    got = await call(secured.app, "POST", "/api/incidents", headers=ADMIN, json={**INCIDENT, "id": iid})
    assert got.status == 409 and "not an incident" in got.json()["detail"], got.text
    assert chain_length(iid) == 1


# ------------------------------------------------------------------ 14: the case file


@pytest.mark.parametrize("role", ["duty_staff", "duty_cadre", "commander"])
async def test_the_case_file_is_refused_to_roles_refused_on_the_audit_trail(secured, role):
    bearer = {"Authorization": f"Bearer {secured.tokens[role]}"}
    assert (await call(secured.app, "GET", "/api/audit/review/INC-1", headers=bearer)).status == 403
    got = await call(secured.app, "GET", "/api/reviews/INC-1/casefile", headers=bearer)
    assert got.status == 403, got.text  # was: 404 here, the archive itself when sealed
    page = await call(secured.app, "GET", "/console/reviews/INC-1/casefile",
                      headers={"cookie": secured.sessions[role]["cookie"]})
    assert page.status == 403
    for allowed in ("supervisor", "duty_chief", "leading_leader"):
        got = await call(secured.app, "GET", "/api/reviews/INC-1/casefile",
                         headers={"Authorization": f"Bearer {secured.tokens[allowed]}"})
        assert got.status == 404, (allowed, got.text)  # allowed; nothing sealed under that id


async def test_the_case_takes_the_callouts_the_incident_named_at_intake_and_nothing_a_caller_adds(secured):
    from api.services.incidents import workflow_id_for
    from workflows.review import review_workflow_id

    linked, other = await red_callout(secured.app), await red_callout(secured.app)
    first = await call(secured.app, "POST", "/api/incidents", headers=ADMIN,
                       json={**INCIDENT, "id": f"SEC-{uuid.uuid4().hex[:6]}"})
    assert first.status == 201, first.text
    for stray in (first.json()["incident_id"], "_anchors", subjects.review_subject("x")):
        got = await call(secured.app, "POST", "/api/incidents", headers=ADMIN, json={**INCIDENT, "related": [stray]})
        assert got.status == 422 and "not a call-out" in got.json()["detail"], got.text  # was: 201
    got = await call(secured.app, "POST", "/api/incidents", headers=ADMIN,
                     json={**INCIDENT, "id": f"SEC-{uuid.uuid4().hex[:6]}", "related": [linked]})
    assert got.status == 201, got.text
    iid = got.json()["incident_id"]
    chief = {"Authorization": f"Bearer {secured.tokens['duty_chief']}"}
    try:
        for related in ([other], [first.json()["incident_id"]], ["_anchors"]):
            got = await call(secured.app, "POST", "/api/reviews", headers=chief,
                             json={"incident_id": iid, "related": related})
            assert got.status == 422 and "not linked" in got.json()["detail"], got.text  # was: 201, in the case
        got = await call(secured.app, "POST", "/api/reviews", headers=chief,
                         json={"incident_id": iid, "activation_id": "SOMEONE-ELSE-flood_control"})
        assert got.status == 422 and "activation_id" in got.json()["detail"], got.text
        got = await call(secured.app, "POST", "/api/reviews", headers=chief, json={"incident_id": iid})
        assert got.status == 201, got.text
        assert got.json()["subjects"] == [iid, linked, subjects.review_subject(iid)]
    finally:
        for wid in (review_workflow_id(iid), workflow_id_for(iid), workflow_id_for(first.json()["incident_id"])):
            try:
                await secured.client.get_workflow_handle(wid).terminate("test over")
            except Exception:  # noqa: BLE001 - not started, or ended
                pass


def test_the_review_opening_leaves_out_what_the_incident_did_not_link(db_url):
    """The activity itself (a review started by a workflow, not through the API) takes the same call-outs."""
    from activities.review import open_review
    from workflows.review import OpenRequest, ReviewInput
    from datetime import UTC, datetime

    iid = "SEC-OPEN-1"
    with session_scope() as s:
        append(s, [NewEvent(subject="callout-W0000000000a1", kind="callout.started", step_id="started"),
                   NewEvent(subject="callout-W0000000000b2", kind="callout.started", step_id="started"),
                   NewEvent(subject="OTHER-1", kind="incident.received", step_id="received"),
                   NewEvent(subject=iid, kind="incident.received", step_id="received",
                            payload={"related": ["callout-W0000000000a1", "OTHER-1"]})])
    got = open_review(OpenRequest(input=ReviewInput(incident_id=iid, related=["callout-W0000000000b2", "OTHER-1"]),
                                  workflow_id=f"review-{iid}", run_id="r1", at=datetime.now(UTC)))
    assert got.subjects == [iid, "callout-W0000000000a1", subjects.review_subject(iid)]
    assert any("callout-W0000000000b2" in g and "not linked" in g for g in got.gaps)


# ------------------------------------------------------------------ the replay cache


def test_the_replay_cache_is_bounded_by_events_least_recently_used_first(db_url):
    from store.replay import EventCache

    with session_scope() as s:
        for n, length in enumerate((30, 30, 30, 120)):
            append(s, [NewEvent(subject=f"callout-c{n}", kind="callout.sent", step_id=f"s{i}") for i in range(length)])
    cache = EventCache(max_events=100, max_subjects=8)
    with session_scope(write=False) as s:
        for n in range(3):
            assert len(cache.events(s, f"callout-c{n}")) == 30
        assert len(cache) == 3 and cache.size == 90
        cache.events(s, "callout-c0")  # used again: c1 is now the least recently used
        assert len(cache.events(s, "callout-c3")) == 120  # longer than the bound alone: answered, not kept
        assert len(cache) == 3 and cache.size == 90
        cache.events(s, "callout-c3")
        extra = [NewEvent(subject="callout-c1", kind="callout.sent", step_id=f"x{i}") for i in range(20)]
    with session_scope() as s:
        append(s, extra)
    with session_scope(write=False) as s:
        assert len(cache.events(s, "callout-c1")) == 50  # grew: 30 + 50 + 30 > 100, so c2 (then oldest) goes
        assert cache.size <= 100 and len(cache) == 2
    small = EventCache(max_events=10_000, max_subjects=2)
    with session_scope(write=False) as s:
        for n in range(3):
            small.events(s, f"callout-c{n}")
    assert len(small) == 2 and small.size == 50 + 30  # c1 and c2; c0 went first
