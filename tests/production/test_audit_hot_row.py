"""The hot row on PostgreSQL (issue 25): two shards of one call-out append at once, neither waits for the other's
chain head; two appends to one chain still take turns; a shard's answers do not wait for its batch's chain head,
and a batch and an answer to the same target do not overwrite each other. And the shard-chain tamper tests of
tests/unit/test_audit_shards.py, here on PostgreSQL (imported: pytest collects them with this folder's `db_url`), with
those of tests/unit/test_audit.py on the payload: how it is hashed, and a NaN or Infinity refused before anything is
written."""
from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

import psycopg

from activities.callout import _record, _record_answers, _write, _write_answers
from store.audit import NewEvent, append, verify
from store.db import session_scope
from tests.unit.test_audit import (test_a_payload_with_nan_or_infinity_is_refused_and_nothing_is_written,
                                   test_every_payload_is_hashed_as_verify_hashes_it_and_stored_as_its_plain_values)
from tests.unit.test_audit_shards import (CO, _chain_rows, _fill, shard,
                                          test_a_deletion_in_a_shard_chain_is_detected,
                                          test_a_shard_chain_deleted_whole_is_detected_by_the_seal_and_the_anchors,
                                          test_a_shards_answers_lane_is_sealed_with_its_chain_and_a_cut_is_detected,
                                          test_a_tail_cut_with_its_head_rewritten_is_detected_by_the_seal,
                                          test_an_append_over_many_chains_locks_those_that_exist_in_one_statement,
                                          test_an_edit_in_a_shard_chain_is_detected,
                                          test_each_shard_appends_to_a_chain_of_its_own_under_the_callout,
                                          test_events_written_before_the_shard_chains_verify_with_the_new,
                                          test_reordering_in_a_shard_chain_is_detected,
                                          test_the_callout_chain_seals_each_shard_chain,
                                          test_the_migration_goes_down_and_up_with_the_events,
                                          test_the_replay_cache_follows_a_growing_shard_chain,
                                          test_the_scorecard_fold_is_refolded_when_a_shard_chain_grows)
from tests.workflows.callout_helpers import callout_input, targets
from workflows.callout import FlushRequest
from workflows.escalation import Record

ON_POSTGRES = (  # collected here again: this folder's `db_url` is a PostgreSQL database
    test_every_payload_is_hashed_as_verify_hashes_it_and_stored_as_its_plain_values,
    test_a_payload_with_nan_or_infinity_is_refused_and_nothing_is_written,
    test_a_deletion_in_a_shard_chain_is_detected, test_a_shard_chain_deleted_whole_is_detected_by_the_seal_and_the_anchors,
    test_a_shards_answers_lane_is_sealed_with_its_chain_and_a_cut_is_detected,
    test_a_tail_cut_with_its_head_rewritten_is_detected_by_the_seal, test_an_edit_in_a_shard_chain_is_detected,
    test_an_append_over_many_chains_locks_those_that_exist_in_one_statement,
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


def _while_open(url: str, first, second) -> tuple[bool, bool]:
    """`first(session)` in a transaction left open; meanwhile `second()` on another thread. Returns (whether the
    second completed while the first was open, whether it was seen waiting for a lock)."""
    done = threading.Event()
    errors: list[BaseException] = []

    def other() -> None:
        try:
            second()
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            done.set()

    waited = False
    with session_scope() as s:
        first(s)
        s.flush()
        t = threading.Thread(target=other)
        t.start()
        give_up = time.monotonic() + 120  # (a safety net for a hung test, not a measure)
        while not done.is_set() and not waited and time.monotonic() < give_up:
            waited = _lock_waiters(url) > 0  # barrier: the other either ends or is seen queued
            done.wait(0.02)
        completed_while_open = done.is_set()
    t.join()
    assert not errors, errors
    return completed_while_open, waited


def _second_append_while_the_first_is_open(url: str, first: str, second: str) -> tuple[bool, bool]:
    """Append for `first` in a transaction left open (its chain's head row locked until it ends); meanwhile another
    thread appends for `second`. Returns what `_while_open` does."""
    def other() -> None:
        with session_scope() as s:
            append(s, [NewEvent(subject=CO, kind="callout.sent", step_id="send/b", workflow_id=second)])

    return _while_open(url, lambda s: append(s, [NewEvent(subject=CO, kind="callout.sent", step_id="send/a",
                                                          workflow_id=first)]), other)


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


# ------------------------------------------------------------------ a shard's answers beside its batch


def _shard_targets(cid: str, keys: list[str], shards: dict[str, int] | None = None) -> None:
    """A running call-out with targets `keys` in its shard 0 (or as `shards` says), notified."""
    from store.callouts import CalloutTarget
    from tests.factories import running_callout

    with session_scope() as s:
        running_callout(s, cid)
        for key in keys:
            s.add(CalloutTarget(callout_id=cid, target_key=key, shard=(shards or {}).get(key, 0), tier="departments",
                                position_code="head", org_unit_id="D1", person_id=f"p-{key}", state="notified"))


def _flush(cid: str, records: list, shard: int = 0) -> FlushRequest:
    inp = callout_input(callout_id=cid)
    return FlushRequest(callout_id=cid, workflow_id=f"{cid}/shard-{shard}", run_id="r", plan=inp.plan,
                        warning=inp.warning, records=records)


def _ack(key: str) -> Record:
    return Record(kind="ack", step_id=f"{key}/ack/0.0/p-{key}sms", target_key=key, person_id=f"p-{key}",
                  channel="sms", actor=f"p-{key}", at=datetime.now(UTC), state="acknowledged")


def _escalated(key: str) -> Record:
    return Record(kind="escalated", step_id=f"{key}/escalated/0", target_key=key, person_id=f"deputy-{key}",
                  at=datetime.now(UTC), state="escalated")


def test_a_shards_answers_are_not_held_behind_its_batch(db_url):
    """A batch of a shard's sends holds its shard chain's head while it writes; an answer to another of the shard's
    targets goes into the shard's answers lane meanwhile, without waiting. An answer to a target of the batch waits
    for the batch's rows, then is recorded after it."""
    cid = "callout-lanes"
    _shard_targets(cid, ["t1", "t2", "t3"])
    batch = _flush(cid, [_escalated("t1"), _escalated("t2")])

    completed, waited = _while_open(db_url, lambda s: _record(s, batch, {}, datetime.now(UTC)),
                                    lambda: _write_answers([(_flush(cid, [_ack("t3")]), datetime.now(UTC))]))
    assert completed and not waited
    completed, waited = _while_open(db_url, lambda s: _record(s, _flush(cid, [_escalated("t1")]), {},
                                                              datetime.now(UTC)),
                                    lambda: _write_answers([(_flush(cid, [_ack("t1")]), datetime.now(UTC))]))
    assert waited and not completed

    rows = targets(cid)  # by person: p-<target key>
    assert (rows["p-t1"].state, rows["p-t2"].state, rows["p-t3"].state) == ("acknowledged", "escalated", "acknowledged")
    assert [(e.kind, e.payload["target"]) for e in _chain_rows(f"{cid}/shard-0/answers")] == [
        ("callout.ack", "t3"), ("callout.ack", "t1")]
    with session_scope(write=False) as s:
        assert verify(s, cid).ok


def test_a_batch_reads_an_answered_row_only_once_the_answer_is_written(db_url):
    """The other way round: an answer's transaction is open when a batch that escalates the same target reads its
    row. The batch waits for the row and reads it answered; read before the answer committed, it would have
    written the target back as escalated over the answer (the shard chain's head no longer orders the two)."""
    cid = "callout-lanes-2"
    _shard_targets(cid, ["t1"])
    completed, waited = _while_open(db_url, lambda s: _record_answers(s, [(_flush(cid, [_ack("t1")]),
                                                                           datetime.now(UTC))]),
                                    lambda: _write(_flush(cid, [_escalated("t1")]), {}, datetime.now(UTC)))
    assert waited and not completed
    row = targets(cid)["p-t1"]
    assert row.state == "acknowledged" and row.ack_by == "p-t1" and row.escalated_to == ["deputy-t1"]
    with session_scope(write=False) as s:
        assert verify(s, cid).ok


def test_a_group_of_shards_answers_is_written_set_wise_and_waits_for_a_batchs_row(db_url):
    """The answers of several shards of two call-outs, handed in at once, are written in one transaction: every
    target answered, each answer in its own shard's lane. A batch holding one of the targets' rows holds the group
    (one transaction) until it commits; the answer is then written over the batch's escalation, not under it."""
    _shard_targets("co-a", ["t1", "t2"], shards={"t2": 1})
    _shard_targets("co-b", ["t1"])
    group = [(_flush("co-a", [_ack("t1")], shard=0), datetime.now(UTC)),
             (_flush("co-a", [_ack("t2")], shard=1), datetime.now(UTC)),
             (_flush("co-b", [_ack("t1")], shard=0), datetime.now(UTC))]
    completed, waited = _while_open(db_url, lambda s: _record(s, _flush("co-a", [_escalated("t2")], shard=1), {},
                                                              datetime.now(UTC)),
                                    lambda: _write_answers(group))
    assert waited and not completed
    a, b = targets("co-a"), targets("co-b")
    assert {k: (r.state, r.ack_by) for k, r in a.items()} == {"p-t1": ("acknowledged", "p-t1"),
                                                               "p-t2": ("acknowledged", "p-t2")}
    assert a["p-t2"].escalated_to == ["deputy-t2"] and b["p-t1"].state == "acknowledged"
    assert [e.payload["target"] for e in _chain_rows("co-a/shard-1/answers")] == ["t2"]
    assert [e.payload["target"] for e in _chain_rows("co-a/shard-0/answers")] == ["t1"]
    assert [e.payload["target"] for e in _chain_rows("co-b/shard-0/answers")] == ["t1"]
    with session_scope(write=False) as s:
        assert verify(s, "co-a").ok and verify(s, "co-b").ok
