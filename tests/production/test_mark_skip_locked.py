"""An SMS reply is shown on the board without waiting for a shard's flush (PostgreSQL, where a flush holds its
targets' rows locked until it commits): the match's transaction marks the rows it can lock now and leaves the one
a flush holds, which a transaction of its own marks once the flush has committed. Waiting held up every answer of
the batch: 1.2-2.7 s for a batch of 200 or more at 100,000 persons (README, "Where the system's part goes")."""
from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import text
from store.answers import mark_answered
from store.callouts import Callout, CalloutTarget
from store.db import get_engine, session_scope
from tests.workflows.callout_helpers import targets

CID = "CO-skip-locked"


def _callout() -> None:
    with session_scope() as s:
        s.add(Callout(id=CID, plan_id="p", plan_version="1", level="orange", category="heavy_rain"))
        s.flush()
        for person in ("p1", "p2", "p3"):
            s.add(CalloutTarget(callout_id=CID, target_key=f"villages/{person}", tier="villages",
                                position_code="village_flood_resp", org_unit_id="v", person_id=person))


def _answered(person: str) -> datetime | None:
    return targets(CID)[person].answered_at


def test_the_row_a_flush_holds_is_left_for_later_and_the_others_are_shown_now(db_url):
    _callout()
    at = datetime(2026, 12, 7, 8, 0, tzinfo=UTC)
    with get_engine(write=True).connect() as flush:  # a shard's flush, in the middle of its transaction
        flush.execute(text("SELECT id FROM callout_target WHERE callout_id = :c AND person_id = 'p2' FOR UPDATE"),
                      {"c": CID})
        with session_scope() as s:
            s.execute(text("SET LOCAL lock_timeout = '5s'"))  # waiting for the flush fails the test, not hangs it
            marked, left = mark_answered(s, [(CID, "p1", at), (CID, "p2", at)], skip_locked=True)
        assert (marked, left) == (1, {(CID, "p2")})
        assert _answered("p1") == at and _answered("p2") is None  # p1 committed while the flush holds p2
        flush.rollback()  # the flush commits (nothing of its own to keep here)
    with session_scope() as s:  # acks' `_shown`: the answer left, in a transaction that waits for its row
        assert mark_answered(s, [(CID, "p2", at)]) == (1, set())
    assert _answered("p2") == at and _answered("p3") is None


def test_a_row_acknowledged_by_the_flush_that_held_it_is_not_marked(db_url):
    _callout()
    at = datetime(2026, 12, 7, 8, 0, tzinfo=UTC)
    with get_engine(write=True).connect() as flush:
        flush.execute(text("UPDATE callout_target SET acknowledged_at = :at, state = 'acknowledged' "
                           "WHERE callout_id = :c AND person_id = 'p3'"), {"at": at, "c": CID})
        with session_scope() as s:
            s.execute(text("SET LOCAL lock_timeout = '5s'"))
            assert mark_answered(s, [(CID, "p3", at)], skip_locked=True) == (0, {(CID, "p3")})
        flush.commit()
    with session_scope() as s:  # recorded meanwhile: nothing left to show
        assert mark_answered(s, [(CID, "p3", at)]) == (0, set())
    assert _answered("p3") is None


def test_the_sms_match_says_which_replies_it_could_not_show(db_url):
    """The match's result tells `sms_reply` which answers are not on the board yet, so that `acknowledge` shows them
    in a transaction of its own (acks' `_shown`)."""
    from api.services.answers.sms import _store_inbound
    from store.messages import OutboxMessage

    _callout()
    with session_scope() as s:
        for i, person in enumerate(("p1", "p2")):
            s.add(OutboxMessage(idempotency_key=f"k{i}", channel="sms", to=f"+861380000000{i}", person_id=person,
                                subject=CID, workflow_id=f"{CID}/shard-0", body="叫应", status="sent",
                                reply_code=f"432{i}", provider_id=f"SM{i}"))
    at = datetime(2026, 12, 7, 8, 0, tzinfo=UTC)
    with get_engine(write=True).connect() as flush:
        flush.execute(text("SELECT id FROM callout_target WHERE callout_id = :c AND person_id = 'p2' FOR UPDATE"),
                      {"c": CID})
        out = _store_inbound([("twilio", "+8613800000000", "1", "SMin0", at), ("twilio", "+8613800000001", "1", "SMin1", at)])
        flush.rollback()
    assert [(handled, subject, person, shown) for handled, subject, person, _, shown in out] == [
        ("ack", CID, "p1", True), ("ack", CID, "p2", False)]
    assert _answered("p1") == at and _answered("p2") is None
