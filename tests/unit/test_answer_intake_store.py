"""store/intake.py on a real database: stored claimed by their process, taken up by another only once stale,
marked done, forgotten a week after."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

from store import intake
from store.db import session_scope


def not_done(s) -> int:
    from sqlmodel import col, func, select

    return s.exec(select(func.count()).select_from(intake.AnswerIntake).where(
        col(intake.AnswerIntake.done_at).is_(None))).one()


def test_claim_finish_and_purge(db_url):
    at = datetime(2026, 12, 5, 2, 0, tzinfo=UTC)
    with session_scope() as s:
        ids = intake.store(s, [("sms", {"from": "+8613900000001", "body": "1"}, at),
                               ("link", {"s": "c1", "p": "p1", "j": "x"}, at),
                               ("sms", {"from": "+8613900000002", "body": "收到"}, at)], "api-a")
    assert len(ids) == 3 and ids == sorted(ids)
    with session_scope() as s:
        assert intake.claim_stale(s, "api-b", timedelta(minutes=1)) == []  # api-a's claims are fresh
        intake.finish(s, {ids[0]: {"handled": "ack"}})
    with session_scope() as s:
        taken = intake.claim_stale(s, "api-b", timedelta(0))  # api-a gone: the two not done, in order
        assert [r.id for r in taken] == ids[1:] and {r.claimed_by for r in taken} == {"api-b"}
        assert [r.attempts for r in taken] == [2, 2] and taken[0].payload == {"s": "c1", "p": "p1", "j": "x"}
        assert not_done(s) == 2
    with session_scope() as s:
        assert intake.purge_done(s, timedelta(days=7)) == 0  # done just now: kept
        assert intake.purge_done(s, timedelta(seconds=-1)) == 1  # (as if a week had passed)
        assert not_done(s) == 2


def test_a_renewed_claim_is_not_taken(db_url):
    from sqlalchemy import update

    old = datetime(2026, 12, 5, 2, 0, tzinfo=UTC)
    with session_scope() as s:
        ids = intake.store(s, [("sms", {"from": "+8613900000003", "body": "1"}, old)] * 2, "api-a")
        s.exec(update(intake.AnswerIntake).values(claimed_at=datetime.now(UTC) - timedelta(hours=1)))  # an hour on
    with session_scope() as s:
        intake.renew(s, "api-b", ids)  # not api-b's: nothing renewed
        intake.renew(s, "api-a", ids[:1])  # the first still waits in api-a's queue: its claim is fresh again
    with session_scope() as s:
        assert [r.id for r in intake.claim_stale(s, "api-b", timedelta(seconds=30))] == ids[1:]
