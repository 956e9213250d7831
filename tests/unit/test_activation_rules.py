"""The plan activation's rules of order, judged without a server: one rule per step
(workflows/activation/rules.py), each read here on the district's public-health plan (definitions/plans/)."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from definitions.loader import load_or_raise
from definitions.schema.plans import Season
from definitions.schema.reporting import Severity
from tests.unit.test_procedure_rules import ROOT
from workflows.activation import (
    RULES, ActivationState, Actor, Answer, ConsultIn, DirectiveIn, DispatchDecisionIn, DispatchIn, DispatchPlan, FeedbackIn,
    Holder, Item, ItemIn, ItemReviewIn, LevelChange, LevelIn, PersonAckIn, ReinforceAnswerIn, ReinforcementRequest,
    ReinforceIn, TerminateIn, refusal)
from workflows.escalation import Contact, Escalation, Target
from workflows.kit.episodes import Episode

NOW = datetime(2026, 7, 1, 3, 0, tzinfo=timezone.utc)
CHIEF = dict(actor="duty:chief", role="duty_chief")
CADRE = dict(actor="duty:cadre", role="duty_cadre")
LEADER = dict(actor="leader:wang", role="leading_leader")
# posts of the public-health plan at level IV: commander dept_head@D10, fire rescue (drafter) dept_head@D09,
# emergency management (approver) dept_head@D01, the sector department dept_head@D10
PERSONS = {"dept_head@D10": "p10", "dept_head@D09": "p09", "dept_head@D01": "p01", "dept_head@D08": "p08",
           "dept_head@D07": "p07", "duty_office_head@D13": "p13"}


@pytest.fixture(scope="module")
def plan():
    return load_or_raise(ROOT).response_plan("public_health").model


def holder(key: str) -> Holder:
    pid = PERSONS.get(key)
    return Holder(key=key, position=key.split("@")[0], org_unit=key.partition("@")[2] or None, label=f"{key} 某",
                  person=Contact(person_id=pid, name=pid, mobile="+8613700000000") if pid else None)


def state(*items: Item, level: Severity = Severity.IV, **kw) -> ActivationState:
    return ActivationState(activated_at=NOW, level=level, holders={k: holder(k) for k in PERSONS},
                           levels=[LevelChange(n=0, level=level, at=NOW, by="leader:wang", role="leading_leader", reason="x")],
                           items=list(items), **kw)


def item(state_: str = "open", **kw) -> Item:
    return Item(id="D1", kind="directive", title="封控", text="封控东山村", assignee=holder("dept_head@D08"),
                issued_by="leader:wang", issued_at=NOW, due_at=NOW + timedelta(hours=2),
                first_due_at=NOW + timedelta(hours=2), state=state_, **kw)


def why(plan, s: ActivationState, action: str, req: Actor) -> tuple[str, str] | None:
    return refusal(plan, s, action, req, NOW)


def kind(plan, s: ActivationState, action: str, req: Actor) -> str | None:
    w = why(plan, s, action, req)
    return w[0] if w else None


def test_every_step_has_one_rule():
    assert set(RULES.rules) == {"directive", "acknowledge", "feedback", "review", "acknowledge_person", "level",
                                "terminate", "dispatch", "consult", "approve", "reinforce", "answer",
                                "meeting", "conclude"}


def test_nothing_happens_in_a_terminated_response(plan):
    s = state(item(), terminated_at=NOW, terminated_by="p10")
    for action, req in [("directive", DirectiveIn(text="x", assignee="group:data", due_in="1h", **LEADER)),
                        ("acknowledge", ItemIn(item_id="D1", actor="p08", role="duty_staff")),
                        ("reinforce", ReinforceIn(kind="experts", detail="x", **LEADER))]:
        w = why(plan, s, action, req)
        assert w is not None and w[0] == "conflict" and "terminated" in w[1]


def test_directive_who_and_when(plan):
    s = state()
    ok = dict(text="封控", assignee="group:data", **LEADER)
    assert kind(plan, s, "directive", DirectiveIn(due_in="2h", **ok)) is None
    assert kind(plan, s, "directive", DirectiveIn(due_in="2h", text="x", assignee="group:data", **CHIEF)) == "forbidden"
    # a commander, but not of this level
    assert kind(plan, s, "directive", DirectiveIn(due_in="2h", text="x", assignee="group:data",
                                                  actor="p01", role="commander")) == "forbidden"
    assert kind(plan, s, "directive", DirectiveIn(due_in="2h", text="x", assignee="group:data",
                                                  actor="p10", role="commander")) is None
    assert kind(plan, s, "directive", DirectiveIn(**ok)) == "invalid"  # neither due_at nor due_in
    assert kind(plan, s, "directive", DirectiveIn(due_in="2h", due_at=NOW + timedelta(hours=1), **ok)) == "invalid"
    assert "time zone" in why(plan, s, "directive", DirectiveIn(due_at=datetime(2026, 7, 1, 9), **ok))[1]
    assert "future" in why(plan, s, "directive", DirectiveIn(due_at=NOW - timedelta(minutes=1), **ok))[1]
    assert "30 days" in why(plan, s, "directive", DirectiveIn(due_at=NOW + timedelta(days=31), **ok))[1]
    w = why(plan, s, "directive", DirectiveIn(due_in="2h", text="x", assignee="group:medical", **LEADER))
    assert w[0] == "invalid" and "not a working group started at Ⅳ级" in w[1]  # medical starts at III
    assert kind(plan, state(level=Severity.III), "directive",
                DirectiveIn(due_in="2h", text="x", assignee="group:medical", **LEADER)) is None


def test_acknowledge_by_the_assignee_or_for_them_with_a_note(plan):
    s = state(item())
    assert kind(plan, s, "acknowledge", ItemIn(item_id="D1", actor="p08", role="duty_staff")) is None
    assert kind(plan, s, "acknowledge", ItemIn(item_id="D9", actor="p08", role="duty_staff")) == "not_found"
    assert kind(plan, s, "acknowledge", ItemIn(item_id="D1", actor="p07", role="duty_staff")) == "forbidden"
    assert kind(plan, s, "acknowledge", ItemIn(item_id="D1", **CADRE)) == "invalid"  # acting for them: how confirmed?
    assert kind(plan, s, "acknowledge", ItemIn(item_id="D1", note="电话确认已收到", **CADRE)) is None
    acked = state(item("acknowledged", acknowledged_at=NOW, acknowledged_by="p08"))
    assert kind(plan, acked, "acknowledge", ItemIn(item_id="D1", actor="p08", role="duty_staff")) == "conflict"
    closed = state(item("closed", closed_reason="响应终止"))
    assert why(plan, closed, "acknowledge", ItemIn(item_id="D1", actor="p08", role="duty_staff"))[0] == "conflict"


def test_feedback_until_reported_done(plan):
    fb = dict(item_id="D1", kind="progress", text="进行中")
    assert kind(plan, state(item("acknowledged")), "feedback", FeedbackIn(actor="p08", role="duty_staff", **fb)) is None
    assert kind(plan, state(item("acknowledged")), "feedback", FeedbackIn(**CADRE, **fb)) is None  # no note needed
    assert kind(plan, state(item("acknowledged")), "feedback", FeedbackIn(actor="p07", role="duty_staff", **fb)) == "forbidden"
    for done in ("accepted", "completed", "reported"):
        assert kind(plan, state(item(done)), "feedback", FeedbackIn(actor="p08", role="duty_staff", **fb)) == "conflict"


def test_review_only_reported_work_and_say_what_is_missing(plan):
    s = state(item("reported"))
    assert kind(plan, s, "review", ItemReviewIn(item_id="D1", decision="accept", **LEADER)) is None
    assert kind(plan, s, "review", ItemReviewIn(item_id="D1", decision="accept", **CHIEF)) == "forbidden"
    assert kind(plan, s, "review", ItemReviewIn(item_id="D1", decision="return", **LEADER)) == "invalid"
    assert kind(plan, s, "review", ItemReviewIn(item_id="D1", decision="return", comments="缺名单", **LEADER)) is None
    assert kind(plan, state(item("in_progress")), "review", ItemReviewIn(item_id="D1", decision="accept", **LEADER)) == "conflict"


def test_acknowledge_a_person_called(plan):
    t = Target(key="dept_head@D08", person=Contact(person_id="p08"), policy="member")
    ep = Episode(name="convene/0", kind="convene", ref="0",
                 esc=Escalation.start("w/convene/0", {"member": plan.policies["member"]}, [t]))
    s = state(episodes=[ep])
    assert kind(plan, s, "acknowledge_person", PersonAckIn(person_id="p08", actor="p08", role="duty_staff")) is None
    assert kind(plan, s, "acknowledge_person", PersonAckIn(person_id="p08", **CADRE)) == "invalid"
    assert kind(plan, s, "acknowledge_person", PersonAckIn(person_id="p08", note="电话确认", **CADRE)) is None
    assert kind(plan, s, "acknowledge_person", PersonAckIn(person_id="p99", note="电话确认", **CADRE)) == "not_found"


def test_level_change_and_termination(plan):
    s = state()
    assert kind(plan, s, "level", LevelIn(level=Severity.IV, reason="x", **LEADER)) == "conflict"
    assert kind(plan, s, "level", LevelIn(level=Severity.III, reason="x", **LEADER)) is None
    assert kind(plan, s, "level", LevelIn(level=Severity.II, reason="x", **LEADER)) == "forbidden"  # II: commander only
    assert kind(plan, s, "level", LevelIn(level=Severity.III, reason="x", **CHIEF)) == "forbidden"
    assert kind(plan, s, "terminate", TerminateIn(reason="x", **LEADER)) is None
    assert kind(plan, s, "terminate", TerminateIn(reason="x", **CHIEF)) == "forbidden"
    assert kind(plan, state(level=Severity.III), "terminate", TerminateIn(reason="x", **LEADER)) == "forbidden"


def dispatch_plan(state_: str, season: Season | None = None) -> DispatchPlan:
    return DispatchPlan(seq=1, forces=["police"], task="封控", drafted_by="p09", drafted_at=NOW, season=season,
                        consult_required=season is not None, state=state_)


def test_dispatch_drafted_by_fire_rescue(plan):
    s = state()
    assert kind(plan, s, "dispatch", DispatchIn(forces=["police"], task="x", actor="p09", role="duty_staff")) is None
    assert kind(plan, s, "dispatch", DispatchIn(forces=["police"], task="x", **CADRE)) is None  # for them
    assert kind(plan, s, "dispatch", DispatchIn(forces=["police"], task="x", actor="p08", role="duty_staff")) == "forbidden"
    assert "unknown army" in why(plan, s, "dispatch", DispatchIn(forces=["army"], task="x", **CADRE))[1]
    assert "each force once" in why(plan, s, "dispatch", DispatchIn(forces=["police", "police"], task="x", **CADRE))[1]
    for pending in ("consulting", "drafted"):
        assert kind(plan, state(dispatches=[dispatch_plan(pending)]), "dispatch",
                    DispatchIn(forces=["police"], task="x", **CADRE)) == "conflict"
    assert kind(plan, state(dispatches=[dispatch_plan("returned")]), "dispatch",
                DispatchIn(forces=["police"], task="x", **CADRE)) is None


def test_in_a_special_period_the_sector_agrees_before_approval(plan):
    flood = plan.seasons()[0]
    s = state(dispatches=[dispatch_plan("consulting", flood)])
    assert kind(plan, s, "consult", ConsultIn(seq=1, agree=True, opinion="同意", actor="p10", role="duty_staff")) is None
    assert kind(plan, s, "consult", ConsultIn(seq=1, agree=True, opinion="同意", actor="p01", role="duty_staff")) == "invalid"
    assert kind(plan, s, "consult", ConsultIn(seq=1, agree=True, opinion="同意", note="卫健局电话同意", actor="p01",
                                              role="duty_staff")) is None
    assert kind(plan, s, "consult", ConsultIn(seq=1, agree=True, opinion="同意", actor="p08", role="duty_staff")) == "forbidden"
    assert kind(plan, s, "consult", ConsultIn(seq=2, agree=True, opinion="同意", actor="p10", role="duty_staff")) == "not_found"
    w = why(plan, s, "approve", DispatchDecisionIn(seq=1, decision="approve", actor="p01", role="duty_staff"))
    assert w[0] == "conflict" and w[1].startswith("汛期") and "须由应急管理部门会商行业主管部门" in w[1]
    drafted = state(dispatches=[dispatch_plan("drafted", flood)])
    assert kind(plan, drafted, "consult", ConsultIn(seq=1, agree=True, opinion="x", actor="p10", role="duty_staff")) == "conflict"
    assert kind(plan, drafted, "approve", DispatchDecisionIn(seq=1, decision="approve", actor="p01", role="duty_staff")) is None


def test_approval_by_emergency_management(plan):
    s = state(dispatches=[dispatch_plan("drafted")])
    assert kind(plan, s, "approve", DispatchDecisionIn(seq=1, decision="approve", actor="p09", role="duty_staff")) == "forbidden"
    assert kind(plan, s, "approve", DispatchDecisionIn(seq=1, decision="return", actor="p01", role="duty_staff")) == "invalid"
    assert kind(plan, s, "approve", DispatchDecisionIn(seq=1, decision="return", comments="少一队", actor="p01",
                                                       role="duty_staff")) is None
    assert kind(plan, s, "approve", DispatchDecisionIn(seq=3, decision="approve", actor="p01", role="duty_staff")) == "not_found"
    approved = state(dispatches=[dispatch_plan("approved")])
    assert kind(plan, approved, "approve", DispatchDecisionIn(seq=1, decision="approve", actor="p01",
                                                              role="duty_staff")) == "conflict"


def test_reinforcement_requested_and_answered_once(plan):
    s = state()
    assert kind(plan, s, "reinforce", ReinforceIn(kind="experts", detail="x", **CHIEF)) is None
    assert kind(plan, s, "reinforce", ReinforceIn(kind="experts", detail="x", actor="x", role="duty_staff")) == "forbidden"
    r = ReinforcementRequest(seq=1, kind="experts", detail="x", requested_by="duty:chief", requested_at=NOW,
                             due_at=NOW + timedelta(hours=2))
    answer = dict(seq=1, decision="granted", detail="两名专家", by_whom="市局王")
    assert kind(plan, state(reinforcements=[r]), "answer", ReinforceAnswerIn(**answer, **CADRE)) is None
    assert kind(plan, state(reinforcements=[r]), "answer", ReinforceAnswerIn(**answer, actor="x", role="duty_staff")) == "forbidden"
    assert kind(plan, state(), "answer", ReinforceAnswerIn(**answer, **CADRE)) == "not_found"
    done = r.model_copy(update={"state": "answered", "answer": Answer(decision="granted", detail="x", by_whom="y",
                                                                      recorded_by="z", at=NOW)})
    w = why(plan, state(reinforcements=[done]), "answer", ReinforceAnswerIn(**answer, **CADRE))
    assert w == ("conflict", "第1号增援请求已答复,无需重复登记 / reinforcement request 1 was answered already (granted)")
