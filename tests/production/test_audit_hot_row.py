"""The hot row on PostgreSQL (issue 25): two shards of one call-out append at once, neither waits for the other's
chain head; two appends to one chain still take turns. And the shard-chain tamper tests of
tests/unit/test_audit_shards.py, here on PostgreSQL (imported: pytest collects them with this folder's `db_url`)."""
from __future__ import annotations

import threading
import time

import psycopg

from store.audit import NewEvent, append, verify
from store.db import session_scope
from tests.unit.test_audit_shards import (CO, _chain_rows, _fill, shard,
                                          test_a_deletion_in_a_shard_chain_is_detected,
                                          test_a_shard_chain_deleted_whole_is_detected_by_the_seal_and_the_anchors,
                                          test_a_tail_cut_with_its_head_rewritten_is_detected_by_the_seal,
                                          test_an_edit_in_a_shard_chain_is_detected,
                                          test_each_shard_appends_to_a_chain_of_its_own_under_the_callout,
                                          test_events_written_before_the_shard_chains_verify_with_the_new,
                                          test_reordering_in_a_shard_chain_is_detected,
                                          test_the_callout_chain_seals_each_shard_chain,
                                          test_the_migration_goes_down_and_up_with_the_events,
                                          test_the_replay_cache_follows_a_growing_shard_chain,
                                          test_the_scorecard_fold_is_refolded_when_a_shard_chain_grows)

ON_POSTGRES = (  # collected here again: this folder's `db_url` is a PostgreSQL database
    test_a_deletion_in_a_shard_chain_is_detected, test_a_shard_chain_deleted_whole_is_detected_by_the_seal_and_the_anchors,
    test_a_tail_cut_with_its_head_rewritten_is_detected_by_the_seal, test_an_edit_in_a_shard_chain_is_detected,
    test_each_shard_appends_to_a_chain_of_its_own_under_the_callout,
    test_events_written_before_the_shard_chains_verify_with_the_new, test_reordering_in_a_shard_chain_is_detected,
    test_the_callout_chain_seals_each_shard_chain, test_the_migration_goes_down_and_up_with_the_events,
    test_the_replay_cache_follows_a_growing_shard_chain, test_the_scorecard_fold_is_refolded_when_a_shard_chain_grows)


def _lock_waiters(url: str) -> int:
    """Backends of this database waiting for a lock (a row lock: `SELECT … FOR UPDATE` of a chain head)."""
    dsn = url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(dsn, autocommit=True) as conn:
        return conn.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                            "AND wait_event_type = 'Lock'").fetchone()[0]


def _second_append_while_the_first_is_open(url: str, first: str, second: str) -> tuple[bool, bool]:
    """Append for `first` in a transaction left open; meanwhile another thread appends for `second`. Returns
    (whether the second completed while the first was open, whether it was ever seen waiting for a lock)."""
    done = threading.Event()
    errors: list[BaseException] = []

    def other() -> None:
        try:
            with session_scope() as s:
                append(s, [NewEvent(subject=CO, kind="callout.sent", step_id="send/b", workflow_id=second)])
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            done.set()

    waited = False
    with session_scope() as s:
        append(s, [NewEvent(subject=CO, kind="callout.sent", step_id="send/a", workflow_id=first)])
        s.flush()  # the first chain's head row is locked until this transaction ends
        t = threading.Thread(target=other)
        t.start()
        give_up = time.monotonic() + 120  # (a safety net for a hung test, not a measure)
        while not done.is_set() and not waited and time.monotonic() < give_up:
            waited = _lock_waiters(url) > 0  # barrier: the other append either ends or is seen queued
            done.wait(0.02)
        completed_while_open = done.is_set()
    t.join()
    assert not errors, errors
    return completed_while_open, waited


def test_two_shards_append_at_once_without_waiting_for_one_row(db_url):
    _fill(n=1)  # the call-out's chain and its shards' exist
    completed, waited = _second_append_while_the_first_is_open(db_url, shard(0), shard(1))
    assert completed and not waited
    with session_scope(write=False) as s:
        assert verify(s, CO).ok
    assert [e.step_id for e in _chain_rows(shard(0))][-1] == "send/a"
    assert [e.step_id for e in _chain_rows(shard(1))][-1] == "send/b"


def test_two_appends_to_one_chain_still_take_turns(db_url):
    """The control: the same shard twice queues on its chain head (what every shard did on the call-out's)."""
    _fill(n=1)
    completed, waited = _second_append_while_the_first_is_open(db_url, shard(0), shard(0))
    assert waited and not completed
    assert [e.chain_seq for e in _chain_rows(shard(0))] == [1, 2, 3]
    with session_scope(write=False) as s:
        assert verify(s, CO).ok
