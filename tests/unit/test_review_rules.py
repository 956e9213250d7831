"""The post-event review's rules of order, judged without a server (workflows/review/rules.py): summaries
from participating units (from the unit itself, or entered by the duty office on its behalf) → compile once
every summary is in or the deadline passed → sign-off of the latest compiled report; nothing after it."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from definitions.loader import load_or_raise
from workflows.common import Actor
from workflows.review import (
    RULES, OpenResult, ReportInfo, ReviewState, SignoffIn, SummaryContent, SummaryIn, UnitRef, UnitState, owner_refusal,
    refusal)

ROOT = Path(__file__).resolve().parents[2] / "definitions"
NOW = datetime(2026, 7, 1, 3, 0, tzinfo=timezone.utc)
DUE = NOW + timedelta(days=7)
TEXT = SummaryContent(what_worked="转移及时", shortcomings="村级回执偏慢")


@pytest.fixture(scope="module")
def template():
    return load_or_raise(ROOT).review_template(None).model


def review(template, *, submitted: tuple[str, ...] = (), status: str = "collecting", reports: int = 0,
           dirty: bool = True) -> ReviewState:
    refs = [UnitRef(id="u1", name="水利局", contact="张局长", answerers=["p:zhang", "p:zhang_deputy"]),
            UnitRef(id="u2", name="东山镇", answerers=["p:li"])]
    units = [UnitState(unit_id=u.id, name=u.name, requested_at=NOW - timedelta(days=1), due_at=DUE,
                       submitted_at=NOW if u.id in submitted else None) for u in refs]
    opened = OpenResult(title="东山村山体滑坡", template=template, template_version="1", units=refs, subjects=[])
    infos = [ReportInfo(version=v + 1, compiled_at=NOW, compiled_by="system", sha256_json="x") for v in range(reports)]
    return ReviewState(started_at=NOW - timedelta(days=1), opened=opened, units=units, status=status, reports=infos,
                       dirty=dirty)


def test_every_step_of_the_review_has_one_rule():
    assert set(RULES.rules) == {"summary", "compile", "signoff"}


def test_the_order_of_the_review(template):
    chief = Actor(actor="p:chief", role=template.roles.compile[0])
    leader = template.roles.signoff[0]
    approve = SignoffIn(actor="p:wang", role=leader, decision="approve", lessons="预警叫应要快")
    # collecting, the deadline ahead: compiling waits for the missing units; nothing to sign off
    why = refusal(review(template, submitted=("u1",)), "compile", chief, NOW)
    assert why[0] == "conflict" and "东山镇" in why[1] and "水利局" not in why[1]
    assert refusal(review(template, submitted=("u1",)), "compile", chief, DUE) is None  # the deadline passed
    assert refusal(review(template, submitted=("u1", "u2")), "compile", chief, NOW) is None
    assert "no compiled report" in refusal(review(template), "signoff", approve, NOW)[1]
    # compiled and unchanged: not again; signed off only as the latest version, with the lessons
    compiled = review(template, submitted=("u1", "u2"), status="compiled", reports=2, dirty=False)
    assert "awaits sign-off" in refusal(compiled, "compile", chief, NOW)[1]
    assert refusal(compiled, "signoff", approve, NOW) is None
    assert "not the latest report (v2)" in refusal(compiled, "signoff", approve.model_copy(update={"version": 1}), NOW)[1]
    assert refusal(compiled, "signoff", approve.model_copy(update={"lessons": " "}), NOW)[0] == "invalid"
    back = SignoffIn(actor="p:wang", role=leader, decision="return")
    assert "what to change" in refusal(compiled, "signoff", back, NOW)[1]
    # returned, or a summary came in after compiling: compile again first
    assert "was returned" in refusal(review(template, status="returned", reports=1), "signoff", approve, NOW)[1]
    assert "out of date" in refusal(review(template, status="collecting", reports=1), "signoff", approve, NOW)[1]


def test_a_summary_comes_from_a_participating_unit_or_the_duty_office(template):
    role = template.roles.summary[0]
    head = SummaryIn(actor="p:zhang", role=role, unit_id="u1", summary=TEXT)
    assert refusal(review(template), "summary", head, NOW) is None
    assert refusal(review(template), "summary", head.model_copy(update={"unit_id": "u9"}), NOW)[0] == "invalid"
    assert owner_refusal(review(template), head) is None
    stranger = head.model_copy(update={"actor": "p:li"})  # answers for 东山镇, not for 水利局
    if role not in template.roles.on_behalf:
        assert "非本单位人员" in owner_refusal(review(template), stranger)[1]
    office = head.model_copy(update={"actor": "p:cadre", "role": template.roles.on_behalf[0]})
    assert refusal(review(template), "summary", office, NOW) is None and owner_refusal(review(template), office) is None


def test_every_step_checks_an_open_review_the_role_and_a_signed_review_first(template):
    stranger = {"actor": "x", "role": "observer"}
    reqs = {"summary": SummaryIn(**stranger, unit_id="u1", summary=TEXT),
            "compile": Actor(**stranger), "signoff": SignoffIn(**stranger, decision="approve", lessons="l")}
    for action, req in reqs.items():
        assert refusal(review(template), action, req, NOW)[0] == "forbidden", action
        assert RULES.refusal(action, None, req, NOW) == ("conflict", "复盘正在启动,请稍后再试 / the review is still opening; try again in a moment")
    chief = Actor(actor="p:chief", role=template.roles.compile[0])
    for status in ("signed", "sealed"):
        assert "signed off" in refusal(review(template, status=status, reports=1), "compile", chief, DUE)[1]
