"""The audit chain: idempotent appends, and detection of any edit, deletion or reordering."""
from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime

import pytest
from sqlalchemy import text
from sqlmodel import select

from store.audit import (ANCHOR_SUBJECT, AuditChain, AuditEvent, NewEvent, NonFinitePayload, StoredEvent, append,
                         compute_hash, verify, write_anchor)
from store.db import get_engine, session_scope


def _fill(subjects=("a", "b"), n=4):
    with session_scope() as s:
        for i in range(n):
            append(s, [NewEvent(subject=sub, kind="callout.sent", step_id=f"s{i}", workflow_id=f"wf-{sub}",
                                payload={"i": i, "中文": "收到"}) for sub in subjects])


def _sql(stmt: str, **params) -> None:
    with get_engine().begin() as conn:
        conn.execute(text(stmt), params)


def test_appends_are_idempotent_by_workflow_and_step(db_url):
    _fill()
    _fill()  # an activity retried by Temporal
    with session_scope(write=False) as s:
        assert len(s.exec(select(AuditEvent)).all()) == 8
        assert verify(s).ok


def test_an_event_appended_again_comes_back_as_it_was_stored(db_url):
    """A retried activity's events come back from `append` as stored (plain rows, not ORM objects), every field as
    the first append returned it, and the next event chains onto them."""
    first_new = NewEvent(subject="a", kind="callout.sent", step_id="s1", workflow_id="wf-a", channel="sms",
                         at=datetime(2026, 7, 1, 2, 0, tzinfo=UTC), payload={"i": 1, "中文": "收到", "to": ["x"]})
    with session_scope() as s:
        [first] = append(s, [first_new])
    with session_scope() as s:
        again, nxt = append(s, [first_new, NewEvent(subject="a", kind="callout.sent", step_id="s2", workflow_id="wf-a")])
    assert isinstance(again, StoredEvent) and again == first
    assert again.at == datetime(2026, 7, 1, 2, 0, tzinfo=UTC) and again.payload == {"i": 1, "中文": "收到", "to": ["x"]}
    assert (nxt.chain_seq, nxt.prev_hash) == (2, first.hash)
    with session_scope(write=False) as s:
        assert verify(s).ok


# payloads of every kind for `append`'s encodings (`_encoded`): keys out of order at every level, keys that are not
# strings (sorted as numbers, 2 before 10, or not sortable at all, mixed), and values JSON has no type for (not NaN:
# PostgreSQL's JSON refuses it)
PAYLOADS = [
    {},
    {"i": 1, "中文": "收到", "to": ["x", None], "ok": True, "f": 0.1, "big": 10**20, "nested": {"b": [1, {"z": 1, "a": 2}]}},
    {"quote": 'a"b\\', "payload": "x", "prev_hash": 1, "e": 1e16, "neg": -0.0, "ctl": "\u2028\x01"},
    {"n": {2: "two", 10: "ten"}, "m": [{3: "c", 20: "t"}]},
    {1: "one", "b": "bee"},
    {"at": datetime(2026, 7, 1, 2, 0, tzinfo=UTC), "set": frozenset(), "tuple": (1, 2)},
]


def test_every_payload_is_hashed_as_verify_hashes_it_and_stored_as_its_plain_values(db_url):
    """`append` encodes a payload as given (stored, read back) and canonically (hashed); the hash is the one
    `compute_hash` (verify, the sealed case file) computes from the stored event, the payload returned and stored its
    plain JSON values with their keys in the order given (a replay lists a work order's limits in its deadlines'
    order), whatever the payload (on PostgreSQL too: tests/production/test_audit_hot_row.py)."""
    at = datetime(2026, 7, 1, 2, 0, 0, 123456, tzinfo=UTC)
    news = [NewEvent(subject="p", kind="callout.sent", step_id=f"s{i}", workflow_id="wf-p", actor='值班员"甲"',
                     channel=None if i % 2 else "sms", at=at, payload=payload) for i, payload in enumerate(PAYLOADS)]
    with session_scope() as s:
        stored = append(s, news)
    with session_scope(write=False) as s:
        rows = {r.event_id: r for r in s.exec(select(AuditEvent))}
        assert verify(s).ok
    for new, got in zip(news, stored, strict=True):
        plain = json.loads(json.dumps(new.payload, ensure_ascii=False, default=str))  # as append stored them always
        assert got.hash == _canonical_hash(got, plain)
        assert compute_hash(rows[got.event_id]) == got.hash
        assert got.payload == plain and rows[got.event_id].payload == plain
        order = json.dumps(plain, ensure_ascii=False)  # (without sorting: the keys' order at every level)
        assert json.dumps(got.payload, ensure_ascii=False) == order == json.dumps(rows[got.event_id].payload,
                                                                                 ensure_ascii=False)


def _canonical_hash(ev, payload) -> str:
    """The audit trail's hash as it has been since its first event, written out here: SHA-256 of the fields as one
    JSON object, keys sorted at every level, compact, non-ASCII as is, the time in UTC with microseconds and a Z."""
    body = {n: getattr(ev, n) for n in ("event_id", "subject", "chain_seq", "workflow_id", "run_id", "step_id", "kind",
                                        "actor", "channel", "prev_hash")}
    body["at"] = ev.at.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"
    body["payload"] = payload
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def test_chains_are_per_subject(db_url):
    _fill()
    with session_scope(write=False) as s:
        chains = {c.subject: c.length for c in s.exec(select(AuditChain))}
        assert chains == {"a": 4, "b": 4}
        a = s.exec(select(AuditEvent).where(AuditEvent.subject == "a").order_by(AuditEvent.chain_seq)).all()
        assert all(x.prev_hash == y.hash for x, y in zip(a[1:], a[:-1], strict=True))


def test_edit_is_detected_with_its_sequence_number(db_url):
    _fill()
    _sql("UPDATE audit_event SET payload = :p WHERE seq = 5", p='{"i": 99}')
    with session_scope(write=False) as s:
        r = verify(s)
    assert not r.ok and r.first_bad_seq == 5 and "edited" in r.reason


def test_edit_of_the_actor_or_time_is_detected(db_url):
    _fill()
    _sql("UPDATE audit_event SET actor = 'someone-else' WHERE seq = 3")
    with session_scope(write=False) as s:
        assert verify(s).first_bad_seq == 3


def test_deletion_in_the_middle_names_the_next_event(db_url):
    _fill()
    _sql("DELETE FROM audit_event WHERE seq = 3")  # subject a, chain position 2
    with session_scope(write=False) as s:
        r = verify(s)
    assert not r.ok and r.first_bad_seq == 5 and r.subject == "a"


def test_deleting_the_tail_is_detected_by_the_chain_head(db_url):
    _fill()
    _sql("DELETE FROM audit_event WHERE seq = 7")  # the last event of subject a
    with session_scope(write=False) as s:
        r = verify(s)
    assert not r.ok and r.subject == "a" and "deleted" in r.reason


def test_deleting_a_whole_subject_is_detected_by_the_anchor(db_url):
    _fill()
    with session_scope() as s:
        assert write_anchor(s) is not None
        assert write_anchor(s) is None  # nothing new to anchor
    _sql("DELETE FROM audit_event WHERE subject = 'b'")
    _sql("DELETE FROM audit_chain WHERE subject = 'b'")
    with session_scope(write=False) as s:
        r = verify(s)
    assert not r.ok and r.subject == "b" and "missing" in r.reason


def test_reordering_is_detected(db_url):
    _fill(subjects=("a",), n=3)
    with session_scope(write=False) as s:
        rows = s.exec(select(AuditEvent).order_by(AuditEvent.seq)).all()
    # swap the content of two events (as a reordering would)
    _sql("UPDATE audit_event SET chain_seq = 99 WHERE seq = :a", a=rows[0].seq)
    _sql("UPDATE audit_event SET chain_seq = 1 WHERE seq = :b", b=rows[1].seq)
    _sql("UPDATE audit_event SET chain_seq = 2 WHERE seq = :a", a=rows[0].seq)
    with session_scope(write=False) as s:
        r = verify(s)
    assert not r.ok and r.first_bad_seq == rows[0].seq


def test_verify_one_subject(db_url):
    _fill()
    _sql("UPDATE audit_event SET payload = '{}' WHERE seq = 2")  # subject b
    with session_scope(write=False) as s:
        assert verify(s, "a").ok
        assert verify(s, "b").first_bad_seq == 2
        assert ANCHOR_SUBJECT not in {c.subject for c in s.exec(select(AuditChain))}


def test_ack_links_expire_and_are_bound_to_person_and_subject(db_url):
    import time

    import pytest

    from store.links import LinkError, consume, make_ack_token, read_ack_token

    token = make_ack_token("k", "callout-1", "p1")
    data = read_ack_token("k", token)
    assert (data["s"], data["p"]) == ("callout-1", "p1")
    with pytest.raises(LinkError) as exc:
        read_ack_token("other-key", token)
    assert exc.value.reason == "invalid"
    time.sleep(2.1)  # itsdangerous counts whole seconds
    with pytest.raises(LinkError) as exc:
        read_ack_token("k", token, max_age=1)
    assert exc.value.reason == "expired"
    with session_scope() as s:
        consume(s, data)
    with session_scope() as s, pytest.raises(LinkError) as exc:
        consume(s, data)
    assert exc.value.reason == "used"


def test_links_spent_together(db_url, monkeypatch):
    """The answers intake spends the links of a batch in one transaction (store.links.consume_many): each link is
    spent once, whether it was spent before or appears twice in the batch; one by one only after a race (below
    none: tests/production/test_links_race.py has one)."""
    import store.links
    from store.links import consume, consume_many, make_ack_token, read_ack_token

    def one_by_one(*_):
        raise AssertionError("spent one by one without a race")

    monkeypatch.setattr(store.links, "_one", one_by_one)

    a, b, c = (read_ack_token("k", make_ack_token("k", "callout-1", p)) for p in ("p1", "p2", "p3"))
    with session_scope() as s:
        consume(s, b)
    with session_scope() as s:
        out = consume_many(s, [a, b, c, a])
    assert [e.reason if e else None for e in out] == [None, "used", None, "used"]
    with session_scope() as s:
        assert [e.reason for e in consume_many(s, [a, c])] == ["used", "used"]
        assert s.get(store.links.UsedLink, store.links._jti(a)).used_at is not None


@pytest.mark.parametrize("bad, where", [(float("nan"), "payload.levels.1.m is nan"),
                                        (float("inf"), "payload.levels.1.m is inf"),
                                        (float("-inf"), "payload.levels.1.m is -inf")])
def test_a_payload_with_nan_or_infinity_is_refused_and_nothing_is_written(db_url, bad, where):
    """JSON has no NaN or Infinity: PostgreSQL's JSON type refused the batch with a database error (a 500, an activity
    retried for ever), SQLite stored it. Now `append` refuses it on both (on PostgreSQL: tests/production/
    test_audit_hot_row.py), naming the kind, the event and where in its payload, before it locks or creates a chain:
    not an event of the batch, not a chain row, is written."""
    fine = NewEvent(subject="n", kind="callout.sent", step_id="s1", workflow_id="wf-n", payload={"ok": 1.5})
    nan = NewEvent(subject="n2", kind="callout.ack", step_id="s2", workflow_id="wf-n2",
                   payload={"levels": [{"m": 1.0}, {"m": bad}], "who": "甲"})
    with session_scope() as s:
        with pytest.raises(NonFinitePayload) as caught:
            append(s, [fine, nan])
        assert s.exec(select(AuditEvent)).all() == [] and s.exec(select(AuditChain)).all() == []  # not even flushed
    message = str(caught.value)
    assert "'callout.ack'" in message and "wf-n2/s2" in message and where in message, message
    with session_scope(write=False) as s:
        assert s.exec(select(AuditEvent)).all() == [] and s.exec(select(AuditChain)).all() == []
    with session_scope() as s:  # the same events, the payload finite: stored as ever
        assert [e.chain_seq for e in append(s, [fine, NewEvent(**{**nan.__dict__, "payload": {"m": 2.0}})])] == [1, 1]
    with session_scope(write=False) as s:
        assert verify(s).ok
