"""One audit chain per shard (issue 25, "the hot row"): a call-out's shards append under the call-out's subject
but each into a chain of its own; the call-out's chain seals each shard chain's head. Any edit, deletion or
reordering in a shard chain is detected, so is a shard chain deleted whole or cut short (by the seal, by the
anchors). The same tests run on PostgreSQL in tests/production/test_audit_hot_row.py."""
from __future__ import annotations

from sqlalchemy import event, text
from sqlmodel import select

import pytest

from store.audit import (ANSWERS, AuditChain, AuditEvent, NewEvent, append, chain_of, is_shard_chain, list_events,
                         seal_shards, subject_heads, verify, write_anchor)
from store.db import get_engine, session_scope
from workflows.kit import events as kinds

CO = "callout-hot"
SHARDS = (0, 1, 2)


def shard(n: int) -> str:
    return f"{CO}/shard-{n}"


def _fill(n: int = 4, shards=SHARDS) -> None:
    """The call-out's start (its own chain), then `n` events per shard, the shards interleaved."""
    with session_scope() as s:
        append(s, [NewEvent(subject=CO, kind="callout.started", step_id="started", workflow_id=CO)])
    for i in range(n):
        for k in shards:
            with session_scope() as s:
                append(s, [NewEvent(subject=CO, kind="callout.sent", step_id=f"send/{i}", workflow_id=shard(k),
                                    payload={"i": i, "shard": k, "中文": "叫应"})])


def _seal() -> list:
    with session_scope() as s:
        return append(s, seal_shards(s, CO, workflow_id=CO))


def _sql(stmt: str, **params) -> None:
    with get_engine().begin() as conn:
        conn.execute(text(stmt), params)


def _chain_rows(chain: str) -> list[AuditEvent]:
    with session_scope(write=False) as s:
        return list(s.exec(select(AuditEvent).where(AuditEvent.chain == chain).order_by(AuditEvent.chain_seq)))


def _verify(subject: str | None = None):
    with session_scope(write=False) as s:
        return verify(s, subject)


def test_the_chain_of_an_event():
    assert chain_of(CO, shard(3)) == shard(3)
    assert chain_of(CO, CO) == CO and chain_of(CO, None) == CO
    assert chain_of(CO, "other/shard-3") == CO  # another subject's shard writing here: the subject's chain
    assert chain_of(CO, f"{CO}/shard-x") == CO and chain_of(CO, f"{CO}/shard-3/relay") == CO
    # a shard's answers lane; the subject's own events have no lanes, nor has another subject's shard here
    assert chain_of(CO, shard(3), ANSWERS) == f"{shard(3)}/answers"
    assert chain_of(CO, CO, ANSWERS) == CO and chain_of(CO, "other/shard-3", ANSWERS) == CO
    with pytest.raises(ValueError, match="no audit lane 'relay'"):
        chain_of(CO, shard(3), "relay")
    assert is_shard_chain(CO, shard(3)) and is_shard_chain(CO, f"{shard(3)}/answers")
    assert not is_shard_chain(CO, CO) and not is_shard_chain(CO, f"{shard(3)}/relay")
    assert not is_shard_chain(CO, f"{CO}/answers") and not is_shard_chain(CO, "other/shard-3/answers")


def test_a_shards_answers_lane_is_sealed_with_its_chain_and_a_cut_is_detected(db_url):
    """The answers a shard records by themselves go into its answers lane (activities/callout.py
    `_write_answers`): a chain of its own, sealed by the call-out's chain like the shard's."""
    _fill(n=2, shards=(0,))
    lane = f"{shard(0)}/answers"
    for i in range(3):
        with session_scope() as s:
            append(s, [NewEvent(subject=CO, kind="callout.ack", step_id=f"t{i}/ack", workflow_id=shard(0),
                                lane=ANSWERS)])
    assert [e.chain_seq for e in _chain_rows(lane)] == [1, 2, 3]
    assert [e.chain_seq for e in _chain_rows(shard(0))] == [1, 2]
    seals = {e.payload["chain"]: e.payload["length"] for e in _seal()}
    assert seals == {shard(0): 2, lane: 3}
    assert _verify(CO).ok and _verify().ok
    rows = _chain_rows(lane)
    _sql("DELETE FROM audit_event WHERE seq = :s", s=rows[-1].seq)  # the last answer, its head rewritten
    _sql("UPDATE audit_chain SET length = 2, head_hash = :h WHERE chain = :c", h=rows[1].hash, c=lane)
    r = _verify(CO)
    assert not r.ok and r.chain == lane and "sealed" in r.reason and "found 2" in r.reason


def test_an_append_over_many_chains_locks_those_that_exist_in_one_statement(db_url):
    """A group of shards' answers appends into their lanes at once (activities/callout.py `_record_answers`): the
    chains that exist are read (locked, on PostgreSQL) in one statement, not one each: on a busy worker each round
    trip waited its turn for Python's lock (issue 25). A chain's first append creates it, one by one."""
    _fill(n=1)

    def answers(i: int) -> list[NewEvent]:
        return [NewEvent(subject=CO, kind="callout.ack", step_id=f"t{k}/ack/{i}", workflow_id=shard(k), lane=ANSWERS)
                for k in reversed(SHARDS)]

    reads: list[str] = []

    def seen(conn, cursor, statement, *args) -> None:
        if statement.lstrip().upper().startswith("SELECT") and "FROM audit_chain" in statement:
            reads.append(statement)

    engine = get_engine(write=True)  # (SQLite: the engine write transactions use)
    event.listen(engine, "before_cursor_execute", seen)
    try:
        with session_scope() as s:
            append(s, answers(0))  # the lanes created
        created, reads[:] = len(reads), []
        with session_scope() as s:
            append(s, answers(1))
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    assert created == 1 + len(SHARDS) and len(reads) == 1
    for k in SHARDS:
        assert [(e.step_id, e.chain_seq) for e in _chain_rows(f"{shard(k)}/answers")] == [
            (f"t{k}/ack/0", 1), (f"t{k}/ack/1", 2)]
    assert _verify(CO).ok and _verify().ok


def test_each_shard_appends_to_a_chain_of_its_own_under_the_callout(db_url):
    _fill()
    with session_scope(write=False) as s:
        chains = {c.chain: (c.subject, c.length) for c in s.exec(select(AuditChain))}
        assert chains == {CO: (CO, 1), **{shard(k): (CO, 4) for k in SHARDS}}
        events = list_events(s, subject=CO)  # readers by subject see every chain's events, in order
        assert len(events) == 13 and [e.seq for e in events] == sorted(e.seq for e in events)
        for k in SHARDS:
            rows = [e for e in events if e.chain == shard(k)]
            assert [e.chain_seq for e in rows] == [1, 2, 3, 4]
            assert all(x.prev_hash == y.hash for x, y in zip(rows[1:], rows[:-1], strict=True))
        assert subject_heads(s, CO)[shard(1)] == (4, _chain_rows(shard(1))[-1].hash)
    r = _verify()
    assert r.ok and r.events == 13 and r.chains == 4 and r.subjects == 1
    assert _verify(CO).ok


def test_the_callout_chain_seals_each_shard_chain(db_url):
    _fill()
    sealed = _seal()
    assert [e.kind for e in sealed] == [kinds.Audit.CHAIN_SEALED] * 3
    assert {e.chain for e in sealed} == {CO}  # in the call-out's own chain
    heads = {e.payload["chain"]: (e.payload["length"], e.payload["head"]) for e in sealed}
    assert heads == {shard(k): (4, _chain_rows(shard(k))[-1].hash) for k in SHARDS}
    assert len(_seal()) == 3 and len(_chain_rows(CO)) == 4  # a retried activity seals nothing twice
    with session_scope() as s:  # a late answer after the seal: the shard chain goes on
        append(s, [NewEvent(subject=CO, kind=kinds.Callout.ACK_LATE, step_id="late/1", workflow_id=shard(1))])
    assert _verify().ok and _verify(CO).ok


def test_an_edit_in_a_shard_chain_is_detected(db_url):
    _fill()
    _seal()
    bad = _chain_rows(shard(1))[1]
    _sql("UPDATE audit_event SET payload = :p WHERE seq = :s", p='{"i": 99}', s=bad.seq)
    for r in (_verify(), _verify(CO)):
        assert not r.ok and r.first_bad_seq == bad.seq and r.chain == shard(1) and r.subject == CO
        assert "edited" in r.reason


def test_a_deletion_in_a_shard_chain_is_detected(db_url):
    _fill()
    rows = _chain_rows(shard(2))
    _sql("DELETE FROM audit_event WHERE seq = :s", s=rows[1].seq)
    r = _verify(CO)
    assert not r.ok and r.first_bad_seq == rows[2].seq and r.chain == shard(2)


def test_reordering_in_a_shard_chain_is_detected(db_url):
    _fill()
    a, b = _chain_rows(shard(0))[:2]
    _sql("UPDATE audit_event SET chain_seq = 99 WHERE seq = :a", a=a.seq)
    _sql("UPDATE audit_event SET chain_seq = 1 WHERE seq = :b", b=b.seq)
    _sql("UPDATE audit_event SET chain_seq = 2 WHERE seq = :a", a=a.seq)
    r = _verify()
    assert not r.ok and r.chain == shard(0) and r.first_bad_seq == a.seq


def test_moving_an_event_to_another_shard_chain_is_detected(db_url):
    _fill()
    last = _chain_rows(shard(0))[-1]
    _sql("UPDATE audit_event SET chain = :c, chain_seq = 5 WHERE seq = :s", c=shard(1), s=last.seq)
    _sql("UPDATE audit_chain SET length = 3 WHERE chain = :c", c=shard(0))  # the heads made to agree
    _sql("UPDATE audit_chain SET length = 5, head_hash = :h WHERE chain = :c", h=last.hash, c=shard(1))
    r = _verify(CO)
    assert not r.ok and r.chain == shard(1) and "deleted or reordered" in r.reason


def test_deleting_a_shard_chains_tail_is_detected_by_its_head(db_url):
    _fill()
    last = _chain_rows(shard(1))[-1]
    _sql("DELETE FROM audit_event WHERE seq = :s", s=last.seq)
    r = _verify(CO)
    assert not r.ok and r.chain == shard(1) and "deleted" in r.reason


def test_a_tail_cut_with_its_head_rewritten_is_detected_by_the_seal(db_url):
    _fill()
    _seal()
    rows = _chain_rows(shard(1))
    _sql("DELETE FROM audit_event WHERE seq IN (:a, :b)", a=rows[-1].seq, b=rows[-2].seq)
    _sql("UPDATE audit_chain SET length = 2, head_hash = :h WHERE chain = :c", h=rows[1].hash, c=shard(1))
    for r in (_verify(CO), _verify()):
        assert not r.ok and r.chain == shard(1) and "sealed" in r.reason and "found 2" in r.reason


def test_a_shard_chain_deleted_whole_is_detected_by_the_seal_and_the_anchors(db_url):
    _fill()
    with session_scope() as s:
        assert write_anchor(s) is not None  # the anchors record every chain's head, the shards' too
        [anchor] = list_events(s, subject="_anchors")
        assert set(anchor.payload["heads"]) == {CO, *(shard(k) for k in SHARDS)}
    _seal()
    _sql("DELETE FROM audit_event WHERE chain = :c", c=shard(2))
    _sql("DELETE FROM audit_chain WHERE chain = :c", c=shard(2))
    r = _verify(CO)  # the call-out's own chain says the shard had 4 events
    assert not r.ok and r.chain == shard(2) and "sealed" in r.reason and "found 0" in r.reason
    _sql("DELETE FROM audit_event WHERE kind = :k", k=kinds.Audit.CHAIN_SEALED)  # the seals removed as well:
    _sql("UPDATE audit_chain SET length = 1, head_hash = (SELECT hash FROM audit_event WHERE chain = :c) "
         "WHERE chain = :c", c=CO)
    r = _verify()
    assert not r.ok and r.chain == shard(2) and "missing" in r.reason  # the anchor still names it


def test_a_seal_of_another_subjects_chain_is_refused(db_url):
    _fill(n=1, shards=(0,))
    with session_scope() as s:
        append(s, [NewEvent(subject="callout-other", kind=kinds.Audit.CHAIN_SEALED, step_id="sealed/x",
                            workflow_id="callout-other", payload={"chain": shard(0), "length": 1, "head": "0" * 64})])
    r = _verify("callout-other")
    assert not r.ok and "not one of its shards" in r.reason


def test_events_written_before_the_shard_chains_verify_with_the_new(db_url, monkeypatch):
    """Events written before this change: a shard's events in the call-out's own chain (the migration sets
    their chain to the subject); new ones in the shard chain, under the same subject."""
    import store.audit

    monkeypatch.setattr(store.audit, "chain_of", lambda subject, *_: subject)  # the former layout
    _fill(n=2, shards=(0, 1))
    monkeypatch.undo()
    with session_scope() as s:
        append(s, [NewEvent(subject=CO, kind="callout.sent", step_id="send/new", workflow_id=shard(0))])
    assert [e.chain_seq for e in _chain_rows(CO)] == [1, 2, 3, 4, 5]
    assert [e.chain_seq for e in _chain_rows(shard(0))] == [1]
    _seal()
    assert _verify().ok and _verify(CO).ok


def test_the_replay_cache_follows_a_growing_shard_chain(db_url):
    from store.replay.load import EventCache

    _fill(n=2)
    cache = EventCache()
    with session_scope(write=False) as s:
        first = cache.events(s, CO)
    assert len(first) == 7
    with session_scope() as s:  # a shard's chain grows; the call-out's own does not
        append(s, [NewEvent(subject=CO, kind="callout.ack", step_id="ack/x", workflow_id=shard(0))])
    with session_scope() as s:  # and a shard chain begins
        append(s, [NewEvent(subject=CO, kind="callout.sent", step_id="send/0", workflow_id=shard(7))])
    with session_scope(write=False) as s:
        rows = cache.events(s, CO)
        assert [r.seq for r in rows] == [e.seq for e in list_events(s, subject=CO)]
    assert len(rows) == 9 and rows[-2].kind == "callout.ack"


def test_the_scorecard_fold_is_refolded_when_a_shard_chain_grows(db_url):
    from sqlalchemy import func

    from store.scorecards import ScorecardFold, callout_folds

    _fill(n=2)
    with session_scope() as s:  # a fold kept at the subject's present length (all its chains)
        n = s.exec(select(func.sum(AuditChain.length)).where(AuditChain.subject == CO)).one()
        s.add(ScorecardFold(subject=CO, length=n, fold='{"kept": {}}'))
    with session_scope(write=False) as s:
        assert callout_folds(s, [CO]) == {CO: {"kept": {}}}  # unchanged: the kept fold
    with session_scope() as s:
        append(s, [NewEvent(subject=CO, kind="callout.ack", step_id="ack/y", workflow_id=shard(2))])
    with session_scope(write=False) as s:
        assert "kept" not in callout_folds(s, [CO])[CO]  # folded again from the trail


def test_the_migration_goes_down_and_up_with_the_events(db_url):
    """0021 down (one chain per subject again) and up (chain = subject), on a trail without shard chains."""
    from alembic import command
    from alembic.config import Config

    from store.db import MIGRATIONS, dispose_all, migrate

    with session_scope() as s:
        for i in range(3):
            append(s, [NewEvent(subject=sub, kind="callout.sent", step_id=f"s{i}", workflow_id=sub)
                       for sub in ("a", "b")])
        write_anchor(s)
    dispose_all()
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", db_url.replace("%", "%%"))
    command.downgrade(cfg, "0021_audit_chain_key@-1")  # this revision only (others build on 0020 too)
    with get_engine().connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM audit_chain WHERE subject = 'a'")).scalar() == 1
    dispose_all()
    migrate(db_url)
    with session_scope(write=False) as s:
        assert {(c.chain, c.subject) for c in s.exec(select(AuditChain))} == {("a", "a"), ("b", "b"),
                                                                              ("_anchors", "_anchors")}
        assert all(e.chain == e.subject for e in list_events(s))
        assert verify(s).ok
    _fill(n=1)
    assert _verify().ok


def test_a_case_file_holds_one_audit_file_per_chain_and_verifies(db_url):
    from datetime import UTC, datetime
    from urllib.parse import quote

    from store import casefile
    from store.casefile.verify import check_chain

    _fill(n=3)
    with session_scope() as s:  # an answer in shard 1's answers lane
        append(s, [NewEvent(subject=CO, kind="callout.ack", step_id="t1/ack", workflow_id=shard(1), lane=ANSWERS)])
    _seal()
    with session_scope(write=False) as s:
        events = {CO: list_events(s, subject=CO)}
    data, manifest = casefile.build(casefile.CaseContents(
        incident_id="INC-1", title="暴雨", sealed_at=datetime(2026, 7, 1, tzinfo=UTC), sealed_by="p-leader",
        report_json=b"{}", report_html=b"<p></p>", report_pdf=None, events=events))
    assert set(manifest["subjects"]) == {CO, *(shard(k) for k in SHARDS), f"{shard(1)}/answers"}
    assert manifest["subjects"][shard(1)]["events"] == 3 and manifest["subjects"][CO]["events"] == 5
    assert manifest["subjects"][f"{shard(1)}/answers"]["file"] == f"audit/{quote(shard(1), safe='')}%2Fanswers.jsonl"
    result = casefile.verify_bytes(data)
    assert result.ok and result.events == 15, result.problems
    path = f"audit/{quote(shard(1), safe='')}.jsonl"
    lines = dict(casefile.read_entries(data))[path].splitlines(keepends=True)
    problems, _ = check_chain(path, b"".join([lines[0], lines[2]]), manifest["subjects"][shard(1)])
    assert problems and "chain position" in problems[0].reason  # an event taken out of a shard's file
