"""The procedures' rules of order, judged without a server: one rule per step (workflows/kit/rules.py).

The reporting chain's order verbal → written (draft → review → submit) → follow-ups → final is read
here from its rules alone (workflows/reporting/rules.py)."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from definitions.loader import load_or_raise
from definitions.schema.reporting import Casualties, Severity
from workflows.common import Actor
from workflows.kit.rules import RuleBook
from workflows.reporting import (
    RULES, ChainState, Deadline, Draft, ReviewIn, VerbalIn, VerbalRecord, Version, WrittenReport, refusal)

ROOT = Path(__file__).resolve().parents[2] / "definitions"
NOW = datetime(2026, 7, 1, 3, 0, tzinfo=timezone.utc)
DUTY = Actor(actor="duty:li", role="duty_staff")


@pytest.fixture(scope="module")
def rules():
    return load_or_raise(ROOT).reporting_rules(None).model


def chain(*reports: WrittenReport, verbal: bool = False, closed: bool = False) -> ChainState:
    due = NOW + timedelta(minutes=30)
    return ChainState(received_at=NOW - timedelta(minutes=5), severity=Severity.IV, casualties=Casualties(),
                      deadlines=[Deadline(key="verbal", kind="verbal", label="口头报告", due_at=due, remind_at=due)],
                      verbal=VerbalRecord(to_whom="区政府总值班室", by_whom="李", at=NOW, recorded_by="duty:li") if verbal else None,
                      reports=list(reports), closed_at=NOW if closed else None)


def report(state: str, by: str = "duty:li") -> WrittenReport:
    draft = Draft(place="东山村", what_happened="山体滑坡", measures="已疏散")
    return WrittenReport(seq=0, kind="written", label="书面报告", deadline_key="written", state=state,
                         versions=[Version(version=1, content=draft, by=by, at=NOW)])


def test_every_step_of_the_chain_has_one_rule():
    assert set(RULES.rules) == {"verbal", "vertical", "draft", "followup", "final", "review", "submit"}


def test_the_lateral_report_is_recorded_once_by_the_duty_office_and_not_in_the_future(rules):
    from workflows.reporting import VerticalIn

    ok = VerticalIn(actor="duty:li", role=rules.roles.verbal[0], to_whom="市气象局值班室", at=NOW - timedelta(minutes=3))
    assert refusal(chain(), rules, "vertical", ok, NOW) is None
    assert refusal(chain(), rules, "vertical", ok.model_copy(update={"role": "supervisor"}), NOW)[0] == "forbidden"
    future = ok.model_copy(update={"at": NOW + timedelta(hours=1)})
    assert refusal(chain(), rules, "vertical", future, NOW)[0] == "invalid"


def test_the_order_of_the_chain(rules):
    role = {a: getattr(rules.roles, a)[0] for a in ("verbal", "draft", "review", "submit")}
    duty = Actor(actor="duty:li", role=role["draft"])
    leader = Actor(actor="leader:wang", role=role["review"])
    submitter = Actor(actor="duty:li", role=role["submit"])
    # nothing drafted yet: a follow-up, a review or a submission is out of order
    assert refusal(chain(), rules, "followup", duty, NOW)[0] == "conflict"
    assert refusal(chain(), rules, "review", ReviewIn(**leader.model_dump(), decision="approve"), NOW)[0] == "conflict"
    assert "draft the written report first" in refusal(chain(), rules, "submit", submitter, NOW)[1]
    assert refusal(chain(), rules, "draft", duty, NOW) is None
    # with the reviewer: no redraft, no submission; the drafter may not approve their own draft
    in_review = chain(report("in_review"))
    assert "with the reviewer" in refusal(in_review, rules, "draft", duty, NOW)[1]
    assert "not been approved" in refusal(in_review, rules, "submit", submitter, NOW)[1]
    own = ReviewIn(actor="duty:li", role=role["review"], decision="approve")
    assert refusal(in_review, rules, "review", own, NOW) == (
        "forbidden", "起草人不能审核本人起草的报告 / the drafter cannot review their own draft")
    assert refusal(in_review, rules, "review", ReviewIn(**leader.model_dump(), decision="return"), NOW)[0] == "invalid"
    assert refusal(in_review, rules, "review", ReviewIn(**leader.model_dump(), decision="approve"), NOW) is None
    # approved: submit it; submitted: follow-ups and the final report, no more drafts
    assert refusal(chain(report("approved")), rules, "submit", submitter, NOW) is None
    assert "cannot be edited" in refusal(chain(report("approved")), rules, "draft", duty, NOW)[1]
    assert refusal(chain(report("submitted")), rules, "followup", duty, NOW) is None
    assert refusal(chain(report("submitted")), rules, "final", duty, NOW) is None
    assert "final report 终报" in refusal(chain(report("approved")), rules, "final", duty, NOW)[1]


def test_the_verbal_report_once_not_in_the_future_not_before_the_incident(rules):
    role = rules.roles.verbal[0]
    v = dict(actor="duty:li", role=role, to_whom="区政府总值班室", by_whom="李")
    assert refusal(chain(), rules, "verbal", VerbalIn(**v), NOW) is None
    assert "recorded already" in refusal(chain(verbal=True), rules, "verbal", VerbalIn(**v), NOW)[1]
    assert refusal(chain(), rules, "verbal", VerbalIn(**v, at=NOW + timedelta(hours=1)), NOW)[0] == "invalid"
    assert "before the incident" in refusal(chain(), rules, "verbal", VerbalIn(**v, at=NOW - timedelta(hours=1)), NOW)[1]


def test_every_step_checks_the_role_and_a_closed_chain_first(rules):
    stranger = Actor(actor="x", role="observer")
    for action in RULES.rules:
        req = VerbalIn(actor="x", role="observer", to_whom="a", by_whom="b") if action == "verbal" else (
            ReviewIn(actor="x", role="observer", decision="approve") if action == "review" else stranger)
        assert refusal(chain(), rules, action, req, NOW)[0] == "forbidden", action
    closed = chain(report("submitted"), closed=True)
    duty = Actor(actor="duty:li", role=rules.roles.draft[0])
    assert "closed by the final report" in refusal(closed, rules, "followup", duty, NOW)[1]


def test_a_rule_book_refuses_a_second_rule_for_a_step_and_an_unknown_step():
    book: RuleBook[None] = RuleBook("demo")

    @book.rule("go")
    def go(ctx, req, now):
        return None

    with pytest.raises(ValueError, match="has a rule already"):
        book.rule("go")(go)
    with pytest.raises(KeyError, match="no rule for the step 'stop'"):
        book.refusal("stop", None, DUTY, NOW)
