"""The escalation interpreter as a pure state machine (no Temporal needed)."""
from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from definitions.schema.escalation import Policy
from workflows.escalation import Ack, Contact, Escalation, Report, Target

T0 = datetime(2026, 7, 1, 3, 0, tzinfo=UTC)
POLICY = Policy.model_validate({"steps": [
    {"notify": ["sms"]}, {"wait_ack": "10m"}, {"notify": ["voice"]}, {"wait_ack": "5m"}, {"repeat": 1},
    {"escalate": "deputy"}, {"wait_ack": "5m"}, {"escalate": "superior", "channels": ["voice"]}, {"wait_ack": "5m"},
    {"inform": "duty_chief"}]})


def target(key="t1", deputy=True) -> Target:
    return Target(key=key, person=Contact(person_id=f"{key}-p", mobile="+8613900000001", name="甲"),
                  deputy=Contact(person_id=f"{key}-d", mobile="+8613900000002") if deputy else None,
                  superior=Contact(person_id=f"{key}-s", mobile="+8613900000003"),
                  others={"duty_chief": Contact(person_id="chief", mobile="+8613900000009")}, policy="p")


def run(esc: Escalation, until: datetime) -> list:
    sends, now = [], T0
    while True:
        sends += esc.advance(now).sends
        nxt = esc.next_deadline()
        if esc.done or nxt is None or nxt > until:
            return sends
        now = nxt


def test_whole_policy_without_answer():
    esc = Escalation.start("r", {"p": POLICY}, [target()])
    sends = run(esc, T0 + timedelta(hours=2))
    got = [(s.person_id, s.channel, s.purpose) for s in sends]
    assert got == [("t1-p", "sms", "notify"), ("t1-p", "voice", "notify"),   # first round
                   ("t1-p", "sms", "notify"), ("t1-p", "voice", "notify"),   # repeat 1
                   ("t1-d", "voice", "escalate"),                           # deputy, by the last channels
                   ("t1-s", "voice", "escalate"),                           # superior, by voice
                   ("chief", "sms", "inform")]
    assert esc.targets["t1"].state == "unreachable"
    assert esc.targets["t1"].recipients == ["t1-p", "t1-d", "t1-s"]


def test_ack_stops_everything_and_a_repeat_is_ignored():
    esc = Escalation.start("r", {"p": POLICY}, [target()])
    esc.advance(T0)
    rec = esc.acknowledge(Ack(person_id="t1-p", channel="sms", at=T0 + timedelta(minutes=3), ref="x"))
    assert [r.kind for r in rec.records] == ["ack"]
    assert not esc.acknowledge(Ack(person_id="t1-p", channel="sms", at=T0, ref="x")).records
    assert esc.done and esc.next_deadline() is None


def test_deputy_answers_only_after_escalation():
    esc = Escalation.start("r", {"p": POLICY}, [target()])
    esc.advance(T0)
    assert not esc.acknowledge(Ack(person_id="t1-d", channel="sms", at=T0)).records  # not yet responsible
    run(esc, T0 + timedelta(minutes=31))
    assert "t1-d" in esc.targets["t1"].recipients
    rec = esc.acknowledge(Ack(person_id="t1-d", channel="link", at=T0 + timedelta(minutes=32)))
    assert rec.records[0].payload["by_deputy"] is True


def test_missing_deputy_is_skipped_and_recorded():
    esc = Escalation.start("r", {"p": POLICY}, [target(deputy=False)])
    records = []
    now = T0
    while not esc.done:
        records += esc.advance(now).records
        now = esc.next_deadline() or now
    assert "escalation_skipped" in [r.kind for r in records]
    assert esc.targets["t1"].recipients == ["t1-p", "t1-s"]


def test_a_failed_channel_ends_the_wait_at_once():
    esc = Escalation.start("r", {"p": POLICY}, [target()])
    [sms] = esc.advance(T0).sends
    esc.report(Report(send_key=sms.key, status="undelivered", at=T0))
    assert esc.next_deadline() is None
    assert [s.channel for s in esc.advance(T0 + timedelta(seconds=1)).sends] == ["voice"]


def test_machine_and_declined():
    esc = Escalation.start("r", {"p": POLICY}, [target()])
    [sms] = esc.advance(T0).sends
    esc.report(Report(send_key=sms.key, status="machine", at=T0))
    assert esc.targets["t1"].state != "acknowledged"
    [voice] = esc.advance(T0).sends
    esc.report(Report(send_key=voice.key, status="declined", at=T0))  # keypress 2: escalate now
    sends = esc.advance(T0).sends
    assert [(s.person_id, s.purpose) for s in sends] == [("t1-d", "escalate")]


def test_night_starts_with_voice():
    esc = Escalation.start("r", {"p": POLICY}, [target()], night=True)
    assert [s.channel for s in esc.advance(T0).sends] == ["voice", "sms"]


def test_one_deadline_for_many_targets_and_leaders_first():
    targets = [target(f"t{i}") for i in range(500)]
    targets[-1] = dataclasses.replace(targets[-1], priority=0)
    esc = Escalation.start("r", {"p": POLICY}, targets)
    sends = esc.advance(T0).sends
    assert sends[0].target_key == "t499" and len(sends) == 500
    assert esc.next_deadline() == T0 + timedelta(minutes=10)


def test_cancel_informs_those_reached():
    esc = Escalation.start("r", {"p": POLICY}, [target("a"), target("b")])
    esc.advance(T0)
    esc.acknowledge(Ack(person_id="a-p", channel="sms", at=T0))
    out = esc.cancel(T0, "CAP Cancel")
    assert {s.person_id for s in out.sends} == {"a-p", "b-p"}
    assert esc.targets["a"].state == "acknowledged" and esc.targets["b"].state == "canceled"


def test_state_survives_serialisation():
    esc = Escalation.start("r", {"p": POLICY}, [target()])
    esc.advance(T0)
    again = Escalation.model_validate_json(esc.model_dump_json())
    assert again.next_deadline() == esc.next_deadline()
    assert [s.channel for s in again.advance(T0 + timedelta(minutes=10)).sends] == ["voice"]


@pytest.mark.parametrize("steps, msg", [
    ([{"wait_ack": "10m"}], "needs at least one notify"),
    ([{"wait_ack": "10m"}, {"notify": ["sms"]}], "starts with a notify"),
    ([{"notify": ["sms"], "wait_ack": "1m"}], "exactly one of"),
    ([{"notify": ["sms"]}, {"escalate": "boss"}], "unknown recipient"),
    ([{"notify": ["fax"]}], "Input should be"),
    ([{"notify": ["sms"]}, {"wait_ack": "0m"}], "must be positive"),
    ([{"notify": ["sms"]}, {"wait_ack": "400d"}], "longer than a year"),
])
def test_bad_policies_are_refused(steps, msg):
    with pytest.raises(ValidationError, match=msg):
        Policy.model_validate({"steps": steps})


def test_the_wait_counts_from_the_gateways_acceptance_never_earlier():
    esc = Escalation.start("r", {"p": POLICY}, [target()])
    [send] = esc.advance(T0).sends
    assert esc.next_deadline() == T0 + timedelta(minutes=10)  # decided at T0
    esc.accepted({send.key: T0 + timedelta(seconds=43)})  # the SMS left 43 s later
    assert esc.next_deadline() == T0 + timedelta(minutes=10, seconds=43)
    assert not esc.advance(T0 + timedelta(minutes=10, seconds=1)).sends  # not yet: its wait is whole
    esc.accepted({send.key: T0 - timedelta(minutes=1)})  # a clock behind the workflow's never shortens it
    assert esc.next_deadline() == T0 + timedelta(minutes=10, seconds=43)


def test_answers_find_their_targets_after_escalation_and_a_round_trip():
    esc = Escalation.start("r", {"p": POLICY}, [target("t1"), target("t2")])
    run(esc, T0 + timedelta(minutes=31))  # both escalated to their deputies
    assert esc.acknowledge(Ack(person_id="t1-d", channel="sms", at=T0, ref="a")).records  # index kept up to date
    again = Escalation.model_validate(esc.model_dump())  # continue-as-new: the indexes are rebuilt
    assert not again.acknowledge(Ack(person_id="t1-d", channel="sms", at=T0, ref="a")).records  # seen
    assert [r.target_key for r in again.acknowledge(Ack(person_id="t2-d", channel="sms", at=T0, ref="b")).records] == ["t2"]
    assert again.targets["t2"].state == "acknowledged"


def test_equal_contacts_are_one_object_and_each_target_still_calls_its_own():
    """share_contacts: a shard's targets name the same superior and duty chief hundreds of times; each is kept once
    (decoded as copies, they were ~1.2 KB a target held for the call-out's life), and nobody is called for another."""
    def village(i: int) -> Target:
        return Target(key=f"v{i}", person=Contact(person_id=f"p{i}", mobile=f"+8613900000{i:03d}"),
                      deputy=Contact(person_id=f"d{i}", mobile=f"+8613800000{i:03d}"),
                      superior=Contact(person_id="town", name="镇长", mobile="+8613700000000"),
                      others={"duty_chief": Contact(person_id="chief", mobile="+8618000000001")}, policy="p")

    targets = [village(i) for i in range(3)]
    esc = Escalation.start("w", {"p": Policy.model_validate({"steps": [{"notify": ["sms"]}, {"wait_ack": "5m"},
                                                                     {"escalate": "superior"}, {"wait_ack": "5m"}]})}, targets)
    held = [ts.target for ts in esc.targets.values()]
    assert len({id(t.superior) for t in held}) == 1 and len({id(t.others["duty_chief"]) for t in held}) == 1
    assert len({id(t.others) for t in held}) == 1
    assert len({id(t.deputy) for t in held}) == 3 and [t.person.person_id for t in held] == ["p0", "p1", "p2"]
    first = esc.advance(T0)
    assert sorted((s.target_key, s.person_id) for s in first.sends) == [("v0", "p0"), ("v1", "p1"), ("v2", "p2")]
    later = esc.advance(T0 + timedelta(minutes=5))
    assert sorted((s.target_key, s.person_id) for s in later.sends) == [("v0", "town"), ("v1", "town"), ("v2", "town")]


def test_due_targets_are_looked_up_once_a_deadline_and_a_held_one_waits_then_runs_out():
    """`due` and `hold` (workflows/escalation/host.py `hold_for_stored`): which targets the store is asked about
    before their wait runs out, and what an answer found there does."""
    esc = Escalation.start("r", {"p": POLICY}, [target("t1"), target("t2"), target("t3")])
    esc.advance(T0)
    deadline = T0 + timedelta(minutes=10)
    esc.targets["t3"].waiting_until = deadline + timedelta(seconds=30)  # (its SMS accepted later)
    assert esc.due(deadline - timedelta(seconds=1), deadline - timedelta(minutes=1)) == []  # nothing has run out
    assert esc.due(deadline, deadline - timedelta(seconds=15)) == ["t1", "t2"]
    assert esc.due(deadline + timedelta(seconds=20), deadline + timedelta(seconds=5)) == []  # run out too long ago

    esc.hold(["t1", "t2"], ["t2"], deadline + timedelta(seconds=60))  # the API has an answer for t2 stored
    assert esc.due(deadline, deadline - timedelta(seconds=15)) == []  # asked once a deadline
    sends = esc.advance(deadline).sends
    assert [(s.person_id, s.channel) for s in sends] == [("t1-p", "voice")]  # t1 runs out; t2 waits on
    assert esc.targets["t2"].state == "notified" and esc.next_deadline() == deadline + timedelta(seconds=30)

    # t2's answer comes by signal within the hold: acknowledged, on time, nothing more sent
    esc.acknowledge(Ack(person_id="t2-p", channel="sms", at=deadline - timedelta(seconds=2), ref="a"))
    assert esc.targets["t2"].state == "acknowledged"

    # a held target whose answer never comes runs out at the hold's end, without being looked up again
    other = Escalation.start("r", {"p": POLICY}, [target("t4")])
    other.advance(T0)
    other.hold(["t4"], ["t4"], deadline + timedelta(seconds=60))
    later = deadline + timedelta(seconds=60)
    assert other.due(later, later - timedelta(seconds=15)) == []
    assert [(s.person_id, s.channel) for s in other.advance(later).sends] == [("t4-p", "voice")]
