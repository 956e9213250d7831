"""A step refused for the role says so in Chinese first, with the roles' Chinese names and who may do it
instead (workflows/kit/roles.py, the one table of role names), then the English the REST clients read."""
from __future__ import annotations

import pytest

from definitions.loader import load_or_raise
from definitions.schema.reporting import Severity
from tests.unit.test_activation_rules import CHIEF, state
from tests.unit.test_procedure_rules import NOW, ROOT, chain, report
from workflows.activation import LevelIn, TerminateIn
from workflows.activation import refusal as activation_refusal
from workflows.common import Actor
from workflows.kit.roles import ROLE_NAMES, may_not, role_list, role_name
from workflows.reporting import VerbalIn, refusal
from workflows.review.rules import RULES as REVIEW
from workflows.spotcheck.models import AnswerIn
from workflows.spotcheck.rules import answer_refusal


@pytest.fixture(scope="module")
def rules():
    return load_or_raise(ROOT).reporting_rules(None).model


@pytest.fixture(scope="module")
def plan():
    return load_or_raise(ROOT).response_plan("public_health").model


def test_one_table_names_every_role():
    from store.auth import ROLES
    from store.roster import DUTY_ROLES

    assert set(ROLE_NAMES) == set(ROLES)
    assert all(DUTY_ROLES[r] == ROLE_NAMES[r] for r in DUTY_ROLES)  # the roster reads the same names
    assert role_name("admin") == "管理员" and role_name("admin", "en") == "Administrator"
    assert role_list(["duty_staff", "leading_leader"]) == "专业值班员、带班领导"


def test_the_admin_may_not_register_the_verbal_report(rules):
    kind, why = refusal(chain(), rules, "verbal", VerbalIn(actor="admin:console", role="admin", to_whom="区政府", by_whom="李"), NOW)
    assert kind == "forbidden"
    assert why.startswith("管理员不能登记口头报告;可由:专业值班员、值班干部、值班长、带班领导办理")
    assert "role 'admin' may not verbal here" in why  # the English follows, as before


def test_review_and_submit_name_who_may(rules):
    why = refusal(chain(report("in_review"), verbal=True), rules, "review",
                  Actor(actor="duty:li", role="duty_staff"), NOW)
    assert why is not None and why[1].startswith("专业值班员不能审核书面报告;可由:")
    assert role_list(rules.roles.review) in why[1]


def test_activation_steps_in_chinese(plan):
    why = activation_refusal(plan, state(), "terminate", TerminateIn(reason="x", **CHIEF), NOW)
    assert why is not None and why[1].startswith("值班长不能终止Ⅳ级响应;可由:")
    level = activation_refusal(plan, state(level=Severity.IV), "level", LevelIn(level=Severity.I, reason="x", **CHIEF), NOW)
    assert level is not None and level[0] == "forbidden" and "值班长不能" in level[1] and " / role 'duty_chief'" in level[1]


def test_review_and_spotcheck_refusals_in_chinese():
    assert may_not("supervisor", "签发事件报告", "signoff here", ["leading_leader"]).startswith(
        "督查不能签发事件报告;可由:带班领导办理 / ")
    assert "signoff" in REVIEW.rules
    why = answer_refusal(["q1"], object(), AnswerIn(actor="x", role="supervisor", person_id="p1", channel="phone",  # type: ignore[arg-type]
                                                    answers={"q1": True}))
    assert why is not None and why[1].startswith("督查不能登记电话核实的答复;可由:专业值班员、值班干部、值班长、带班领导办理")
