"""The spot check's rules of order, judged without a server (workflows/spotcheck/rules.py): answers while it
calls (and, recorded late, while it closes) from the person asked or by phone from a duty officer; a follow-up
resolved once, by the town's responsible person or a duty officer; nothing once it closed or before it calls."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from workflows.spotcheck import RULES, AnswerIn, Check, FollowupView, PersonView, ResolveIn, SpotCheckView

NOW = datetime(2026, 7, 1, 3, 0, tzinfo=timezone.utc)
QUESTIONS = ["received", "on_duty"]
YES = {"received": True, "on_duty": True}


def check(status: str = "running", closing: bool = False, answered: bool = False, resolved: bool = False) -> Check:
    p = PersonView(person_id="p1", name="村干部甲", label="东山村", answers=YES if answered else None,
                   channel="voice" if answered else None, answered_at=NOW if answered else None)
    f = FollowupView(key="t1/p1", town_id="t1", about_person_id="p1", failed=["on_duty"], responsible_id="p:head",
                     due_at=NOW + timedelta(days=1), opened_at=NOW, status="resolved" if resolved else "open",
                     resolved_by="duty:li" if resolved else None)
    v = SpotCheckView(check_id="spotcheck-c1", callout_id="c1", status=status, persons=[p], followups=[f])
    return Check(v=v, closing=closing, question_ids=QUESTIONS, followups={f.key: f})


def answer(**kw) -> AnswerIn:
    return AnswerIn(**{"actor": "p1", "role": "village", "person_id": "p1", "answers": YES, "channel": "voice", **kw})


def test_every_step_of_the_check_has_one_rule():
    assert set(RULES.rules) == {"answer", "resolve"}


def test_an_answer_comes_from_the_person_asked_or_by_phone_from_a_duty_officer():
    assert RULES.refusal("answer", check(), answer(), NOW) is None
    assert "comes from the person asked" in RULES.refusal("answer", check(), answer(actor="p2"), NOW)[1]
    assert RULES.refusal("answer", check(), answer(actor="duty:li", role="duty_staff", channel="phone"), NOW) is None
    assert RULES.refusal("answer", check(), answer(channel="phone"), NOW)[0] == "forbidden"
    assert "not in this spot check's sample" in RULES.refusal("answer", check(), answer(person_id="p9"), NOW)[1]
    assert "missing on_duty" in RULES.refusal("answer", check(), answer(answers={"received": True}), NOW)[1]
    assert "answered already" in RULES.refusal("answer", check(answered=True), answer(), NOW)[1]


def test_a_follow_up_is_resolved_once_by_its_town_or_a_duty_officer():
    head = ResolveIn(actor="p:head", role="town", key="t1/p1", note="已整改")
    assert RULES.refusal("resolve", check(), head, NOW) is None
    assert RULES.refusal("resolve", check(), head.model_copy(update={"actor": "p:other"}), NOW)[0] == "forbidden"
    assert RULES.refusal("resolve", check(), head.model_copy(update={"actor": "duty:li", "role": "duty_chief"}), NOW) is None
    assert "no follow-up 't9'" in RULES.refusal("resolve", check(), head.model_copy(update={"key": "t9"}), NOW)[1]
    assert "resolved already by duty:li" in RULES.refusal("resolve", check(resolved=True), head, NOW)[1]


def test_nothing_before_it_calls_or_after_it_closed_but_answers_while_it_closes():
    head = ResolveIn(actor="p:head", role="town", key="t1/p1", note="已整改")
    assert "not started calling" in RULES.refusal("answer", check(status="waiting"), answer(), NOW)[1]
    for status in ("closed", "skipped"):
        assert f"the spot check is {status}" in RULES.refusal("answer", check(status=status), answer(), NOW)[1]
    assert RULES.refusal("answer", check(closing=True), answer(), NOW) is None  # recorded late
    assert "is closing" in RULES.refusal("resolve", check(closing=True), head, NOW)[1]
