"""An answer is shown on the board without waiting for a shard's flush (PostgreSQL, where a flush holds the target
rows it writes until it commits). An answer is a row of its own (store/callouts.py `CalloutAnswer`), inserted: the
match locks no target row. Marking the targets' rows instead waited for those locks, and every answer of the batch
waited with it (PostgreSQL logged waits up to 0.45 s at 100,000 persons: docs/performance.md, "Answers in rows of their
own").

Each test holds a target's row as a flush does, in the middle of its transaction, and answers meanwhile; the
database's lock timeout makes an answer that waited for the row fail the test, not hang it."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from api.console.pages import library
from api.services import board as board_svc
from store.answers import mark_answered
from store.callouts import Callout, CalloutTarget
from store.db import dispose_all, get_engine, session_scope
from store.messages import OutboxMessage
from tests.workflows.callout_helpers import answered, targets

CID = "CO-no-wait"
AT = datetime(2026, 12, 7, 8, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def lock_timeout(db_url):
    """Every new connection to the test's database gives up a lock after 5 s (the pools are emptied, so that the
    answers' sessions are new ones)."""
    with session_scope() as s:
        s.execute(text("DO $$ BEGIN EXECUTE format('ALTER DATABASE %I SET lock_timeout = %L', current_database(), "
                       "'5s'); END $$"))
    dispose_all()


def _callout() -> None:
    with session_scope() as s:
        s.add(Callout(id=CID, plan_id="p", plan_version="1", level="orange", category="heavy_rain"))
        s.flush()
        for person in ("p1", "p2", "p3"):
            s.add(CalloutTarget(callout_id=CID, target_key=f"villages/{person}", tier="villages",
                                position_code="village_flood_resp", org_unit_id="v", person_id=person))


def _flush_holds(conn, person: str) -> None:
    """What a shard's flush does to a target's row before its commit: locks it as it reads it, then writes it."""
    conn.execute(text("SELECT id FROM callout_target WHERE callout_id = :c AND person_id = :p ORDER BY id FOR UPDATE"),
                 {"c": CID, "p": person})
    conn.execute(text("UPDATE callout_target SET state = 'notified', updated_at = now() "
                      "WHERE callout_id = :c AND person_id = :p"), {"c": CID, "p": person})


def test_answers_are_shown_while_a_flush_holds_their_rows(db_url):
    _callout()
    since = datetime.now(UTC)  # a board's last poll: after the targets were written, before the answers
    with get_engine(write=True).connect() as flush:
        _flush_holds(flush, "p2")
        with session_scope() as s:
            assert len(mark_answered(s, [(CID, "p1", AT), (CID, "p2", AT + timedelta(seconds=1))])) == 2
        # committed while the flush still holds p2's row: a board's poll finds both
        assert answered(CID) == {"p1": AT, "p2": AT + timedelta(seconds=1)}
        with session_scope(write=False) as s:
            rows, _ = board_svc.changed_rows(s, library(), CID, since)
        assert {r["person_id"]: r["answered_at"] for r in rows} == {
            "p1": AT.isoformat(), "p2": (AT + timedelta(seconds=1)).isoformat()}
        flush.commit()
    assert targets(CID)["p2"].state == "notified"  # the flush's own write stands beside the answer
    with session_scope() as s:  # shown once: a later answer of the same person adds nothing
        assert len(mark_answered(s, [(CID, "p2", AT + timedelta(seconds=5))])) == 0
    assert answered(CID) == {"p1": AT, "p2": AT + timedelta(seconds=1)}


def test_the_sms_match_shows_every_reply_while_a_flush_holds_a_row(db_url):
    """The match's own transaction shows each reply it matched, the one whose row a flush holds too: no answer is
    left to a later transaction that would wait for the flush."""
    from api.services.answers.sms import _store_inbound

    _callout()
    with session_scope() as s:
        for i, person in enumerate(("p1", "p2")):
            s.add(OutboxMessage(idempotency_key=f"k{i}", channel="sms", to=f"+861380000000{i}", person_id=person,
                                subject=CID, workflow_id=f"{CID}/shard-0", body="叫应", status="sent",
                                reply_code=f"432{i}", provider_id=f"SM{i}"))
    with get_engine(write=True).connect() as flush:
        _flush_holds(flush, "p2")
        out = _store_inbound([("twilio", "+8613800000000", "1", "SMin0", AT),
                              ("twilio", "+8613800000001", "1", "SMin1", AT)])
        assert [(handled, subject, person) for handled, subject, person, _ in out] == [
            ("ack", CID, "p1"), ("ack", CID, "p2")]
        assert answered(CID) == {"p1": AT, "p2": AT}
        flush.rollback()


def test_a_shard_reads_the_answers_stored_for_it_while_a_flush_holds_their_rows(db_url):
    """Before a wait runs out a shard asks which of its due targets the API has stored an answer for (store/answers.py
    `answered_keys`, workflows/escalation/host.py `hold_for_stored`): on PostgreSQL, beside a flush holding a row,
    the answered target of that shard only, of the keys asked."""
    from store.answers import answered_keys

    _callout()
    keys = [f"villages/{p}" for p in ("p1", "p2", "p3")]
    with get_engine(write=True).connect() as flush:
        _flush_holds(flush, "p2")
        with session_scope() as s:
            assert len(mark_answered(s, [(CID, "p2", AT), (CID, "p3", AT)])) == 2
        with session_scope(write=False) as s:
            assert answered_keys(s, CID, 0, keys) == ["villages/p2", "villages/p3"]
            assert answered_keys(s, CID, 0, keys[:2]) == ["villages/p2"]  # of the keys asked only
            assert answered_keys(s, CID, 1, keys) == []  # another shard's targets
        flush.commit()
