"""Issue 16, findings 2 and 3: CAP identifiers are unique per sender only.

- Another sender's warning with an identifier seen before is a distinct warning with its own
  call-out (workflow id `callout-<hash of sender|identifier>`), never "a duplicate"; a resend by
  the same sender stays a duplicate.
- An Update or Cancel naming another sender's warning is refused (403, saying why) and recorded;
  a duty officer still cancels a call-out by hand, recorded with their name.
- Also reported: cancelling a call-out whose workflow is gone was a 500 (NOT_FOUND re-raised).
"""
from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlmodel import select

from store.audit import AuditEvent
from store.db import session_scope
from tests.helpers import poll
from tests.security.asgi import call
from tests.security.conftest import ADMIN_TOKEN

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
TOWN = "330110001"


def warning(ident: str, sender: str, level: str, **kw) -> dict:
    return {"identifier": ident, "sender": sender, "level": level, "event": "暴雨", "headline": f"暴雨{level}预警",
            "areas": [TOWN], **kw}


def events(subject: str, kind: str) -> list[AuditEvent]:
    with session_scope(write=False) as s:
        return list(s.exec(select(AuditEvent).where(AuditEvent.subject == subject, AuditEvent.kind == kind)))


async def callout_status(app, cid: str) -> str | None:
    got = await call(app, "GET", f"/api/callouts/{cid}", headers=ADMIN)
    return got.json()["status"] if got.status == 200 else None


async def test_the_same_identifier_from_another_sender_starts_its_own_callout(secured):
    from api.services.warnings import warning_id_for

    ident = f"2026-{uuid.uuid4().hex[:6]}"
    blue = await call(secured.app, "POST", "/api/warnings", headers=ADMIN, json=warning(ident, "town-notice", "blue"))
    assert blue.status == 201 and blue.json()["callout_id"] is None, blue.text
    red = await call(secured.app, "POST", "/api/warnings", headers=ADMIN, json=warning(ident, "qx-weather", "red"))
    assert red.status == 201, red.text  # was: 200 "duplicate", no call-out, no alarm
    body = red.json()
    wid = warning_id_for("qx-weather", ident)
    assert body["duplicate"] is False and body["action"] == "callout_started"
    assert body["warning_id"] == wid != blue.json()["warning_id"]
    assert body["callout_id"] == f"callout-{wid}"  # the workflow id carries the sender (hashed with the identifier)
    assert "town-notice" in body["note"] and "distinct" in body["note"]
    [received] = events(body["callout_id"], "warning.received")
    assert received.payload["identifier_also_from"] == ["town-notice"]
    await poll(lambda: callout_status(secured.app, body["callout_id"]), lambda s: s is not None, what="the call-out")

    again = await call(secured.app, "POST", "/api/warnings", headers=ADMIN, json=warning(ident, "qx-weather", "red"))
    assert again.status == 200 and again.json()["duplicate"] is True  # a resend by the same sender: nothing new
    assert again.json()["callout_id"] == body["callout_id"]


async def test_a_cancel_from_another_sender_is_refused_and_recorded(secured):
    from api.services.warnings import warning_id_for

    ident = f"RED-{uuid.uuid4().hex[:6]}"
    red = await call(secured.app, "POST", "/api/warnings", headers=ADMIN, json=warning(ident, "qx-weather", "red"))
    assert red.status == 201, red.text
    cid = red.json()["callout_id"]
    await poll(lambda: callout_status(secured.app, cid), lambda s: s == "running", what="the call-out running")

    staff = {"Authorization": f"Bearer {secured.tokens['duty_staff']}"}
    cancel_id = f"C-{uuid.uuid4().hex[:6]}"
    forged = await call(secured.app, "POST", "/api/warnings", headers=staff, json={
        "identifier": cancel_id, "sender": "someone-else", "msg_type": "Cancel", "references": [ident]})
    assert forged.status == 403, forged.text  # was: 201 "canceled"
    assert "qx-weather" in forged.json()["detail"] and "only a warning's own sender" in forged.json()["detail"]
    [refused] = events(warning_id_for("someone-else", cancel_id), "warning.refused")
    assert refused.actor not in ("", "system"), refused.actor  # who tried it
    assert refused.payload["referenced"][0]["callout_id"] == cid and refused.payload["sender"] == "someone-else"
    assert events(cid, "warning.cancel") == []

    # the same, with CAP's own reference triple naming the sender outright, as an Update
    triple = await call(secured.app, "POST", "/api/warnings", headers=ADMIN, json={
        "identifier": f"U-{uuid.uuid4().hex[:6]}", "sender": "someone-else", "msg_type": "Update", "level": "blue",
        "references": [f"qx-weather,{ident},2026-07-01T03:10:00+08:00"]})
    assert triple.status == 403, triple.text
    assert await callout_status(secured.app, cid) == "running"

    # the sender itself cancels it
    own = await call(secured.app, "POST", "/api/warnings", headers=ADMIN, json={
        "identifier": f"C-{uuid.uuid4().hex[:6]}", "sender": "qx-weather", "msg_type": "Cancel", "references": [ident]})
    assert own.status == 201 and own.json()["action"] == "canceled", own.text
    await poll(lambda: callout_status(secured.app, cid), lambda s: s == "canceled", what="the call-out canceled")


async def test_a_duty_officer_cancels_by_hand_recorded_with_their_name(secured):
    ident = f"RED-{uuid.uuid4().hex[:6]}"
    red = await call(secured.app, "POST", "/api/warnings", headers=ADMIN, json=warning(ident, "qx-weather", "red"))
    cid = red.json()["callout_id"]
    await poll(lambda: callout_status(secured.app, cid), lambda s: s == "running", what="the call-out running")
    chief = {"Authorization": f"Bearer {secured.tokens['duty_chief']}"}
    got = await call(secured.app, "POST", f"/api/callouts/{cid}/cancel", headers=chief, json={"reason": "误报"})
    assert got.status == 200, got.text
    [asked] = events(cid, "callout.cancel_requested")
    assert asked.actor != "system" and asked.payload["delivered"] is True


async def test_cancelling_a_callout_whose_workflow_is_gone_is_409_and_recorded(secured):
    from store.audit import NewEvent, append
    from store.callouts import Callout

    cid = f"callout-Wgone{uuid.uuid4().hex[:8]}"
    with session_scope() as s:  # the record says running; Temporal has no such workflow (ended and removed)
        s.add(Callout(id=cid, warning_id=cid[8:], plan_id="heavy_rain", plan_version="v", level="red",
                      category="heavy_rain", title="gone", status="running", started_at=datetime.now(UTC)))
        append(s, [NewEvent(subject=cid, kind="callout.started", step_id="started")])
    got = await call(secured.app, "POST", f"/api/callouts/{cid}/cancel", headers=ADMIN, json={"reason": "演练结束"})
    assert got.status == 409, got.text  # was: 500 (NOT_FOUND re-raised)
    assert "no longer running" in got.json()["detail"]
    [asked] = events(cid, "callout.cancel_requested")
    assert asked.payload["delivered"] is False and asked.payload["reason"] == "演练结束"
