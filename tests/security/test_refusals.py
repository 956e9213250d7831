"""Finding 12 of issue 16: refused steps are recorded, but aggregated and kept out of the procedure's own chain.

300 refused sign-offs by a read-only supervisor grew a review's chain from 6 to 307 events, all sealed into the
case file. Now each refusal is counted per (subject, step, caller) and hour (store/refusals.py); the first of
each hour goes to the day's `refusals/<date>` audit chain; the review's chain gets none; a supervisor lists them.
"""
from __future__ import annotations

from datetime import UTC, datetime

from tests.security.asgi import call
from tests.security.test_ownership import audit, owned_env, post, review  # noqa: F401 - owned_env is a fixture

REFUSED = 30


class _InOneHour(datetime):
    """The refusals' clock, inside one hour: counted per clock hour, 30 refusals begun at xx:59:59 make two rows."""

    @classmethod
    def now(cls, tz=None):
        return datetime(2026, 12, 5, 3, 20, tzinfo=UTC)


async def test_refusals_are_counted_apart_from_the_procedures_chain(owned_env, monkeypatch):
    from store.db import session_scope
    from store.refusals import Refusal, audit_subject

    monkeypatch.setattr("api.services.steps.datetime", _InOneHour)
    iid = await review(owned_env)
    subject = f"review/{iid}"
    for _ in range(REFUSED):
        got = await post(owned_env, f"/api/reviews/{iid}/signoff", "supervisor", {"decision": "approve", "lessons": "x"})
        assert got.status == 403 and "supervisor" in got.json()["detail"]
    assert not [e for e in audit(subject) if e.kind.endswith(".refused")], "refusals went into the review's own chain"

    with session_scope(write=False) as s:
        rows = list(s.exec(Refusal.__table__.select()))
    assert [(r.subject, r.action, r.actor, r.count, r.status) for r in rows] == [
        (subject, "signoff", "supervisor:supervisor", REFUSED, 403)]
    day = audit(audit_subject(rows[0].first_at))
    assert [(e.kind, e.actor, e.payload["subject"], e.payload["action"]) for e in day] == [
        ("review.refused", "supervisor:supervisor", subject, "signoff")], "one event for the hour, not one per refusal"

    listed = await call(owned_env.app, "GET", f"/api/audit/refusals?subject={subject}",
                        headers={"Authorization": f"Bearer {owned_env.tokens['supervisor']}"})
    assert listed.status == 200, listed.text
    assert [(r["action"], r["count"], r["reason"][:40], r["audit_subject"]) for r in listed.json()] == [
        ("signoff", REFUSED, rows[0].reason[:40], audit_subject(rows[0].first_at))]
    staff = await call(owned_env.app, "GET", "/api/audit/refusals",
                       headers={"Authorization": f"Bearer {owned_env.tokens['duty_staff']}"})
    assert staff.status == 403
