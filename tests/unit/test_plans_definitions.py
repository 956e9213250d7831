"""Response plans as data: the shipped plans load and say what the seeds say; mistakes name file:line and path."""
from __future__ import annotations

import shutil
from datetime import timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError

from definitions.loader import load_library, load_or_raise
from definitions.schema.plans import PostRef, ResponsePlan, Season
from definitions.schema.reporting import Severity

ROOT = Path(__file__).resolve().parents[2] / "definitions"


def plans() -> dict[str, ResponsePlan]:
    return {k: v.model for k, v in load_or_raise(ROOT).of("plans").items()}


def test_the_five_plans_load():
    assert set(plans()) == {"flood_control", "geological_hazard", "forest_fire", "work_safety", "public_health"}


def test_the_epidemic_plan_of_seed_003_has_its_nine_groups_and_time_limits():
    p = plans()["public_health"]
    assert [g.name_zh for g in p.groups] == ["综合协调组", "数据排查组", "流调溯源组", "核酸检测组", "转运隔离组", "现场管控组",
                                             "医疗救治组", "信息发布组", "物资保障组"]
    due = {t.id: t.due for t in p.tasks}
    assert due["trajectory"] == timedelta(hours=4)  # 4小时内完成病例活动轨迹调查
    assert due["close_contacts"] == timedelta(hours=8)  # 8小时内将密接转运至集中隔离点
    assert due["cross_region"] == timedelta(hours=24)  # 收到通报后24小时内反馈协查结果
    assert {p.task("trajectory").group, p.task("close_contacts").group, p.task("cross_region").group} == {
        "tracing", "transfer", "data"}
    # the field-level members named in the seed: the town's Party secretary and head where the epidemic is
    coordination = p.group("coordination")
    assert {m.key for m in coordination.members} >= {"town_party_secretary@incident_town", "town_head@incident_town"}
    for lv in Severity:  # the three limits hold at every level
        assert {"trajectory", "close_contacts", "cross_region"} <= {t.id for t in p.level(lv).tasks}
    assert len(p.level(Severity.III).groups) == 9


def test_who_commands_follows_seed_001_and_who_may_activate_narrows_upwards():
    for p in plans().values():
        assert p.level(Severity.IV).commander.position == "dept_head"  # 部门负责人
        assert p.level(Severity.III).commander.key == "deputy_district_head"  # 区政府分管领导
        assert p.level(Severity.II).commander.key == "district_head"  # 区政府主要领导
        assert p.level(Severity.I).commander.key == "district_party_secretary"  # 提级指挥, 党政主抓
        assert "duty_chief" in p.level(Severity.IV).activate and p.level(Severity.I).activate == ["commander"]
        assert p.level(Severity.I).terminate == ["commander"]
        for lv in Severity:
            level = p.level(lv)
            assert level.start_condition_zh and level.groups
            assert all(p.task(t.id).group in level.groups for t in level.tasks)
        # force dispatch: fire rescue drafts, emergency management approves (seed 003 篇四)
        assert p.dispatch.drafter.key == "dept_head@D09" and p.dispatch.approver.key == "dept_head@D01"
        assert {s.id for s in p.seasons()} == {"flood", "forest_fire"}


def test_seasons_are_month_days_and_may_wrap_the_year():
    fire = Season(id="forest_fire", name_zh="森林防火期", start="11-01", end="04-30")
    assert fire.contains(11, 30) and fire.contains(1, 15) and fire.contains(4, 30) and not fire.contains(5, 1)
    flood = Season(id="flood", name_zh="汛期", start="04-15", end="10-15")
    assert flood.contains(7, 1) and not flood.contains(10, 16) and flood.label() == "汛期(04-15至10-15)"
    with pytest.raises(ValidationError, match="not a month-day"):
        Season(id="x", name_zh="x", start="02-30", end="03-01")


def test_posts_are_written_position_at_unit():
    assert PostRef.model_validate({"position": "dept_head", "org_unit": "D09"}).key == "dept_head@D09"
    p = plans()["flood_control"]
    assert p.group("evacuation").lead.org_unit == "incident_town"
    with pytest.raises(ValidationError, match="is not a post"):
        ResponsePlan.model_validate({**p.model_dump(mode="json"), "groups": [
            {**p.groups[0].model_dump(mode="json"), "lead": "Dept Head"}, *[g.model_dump(mode="json") for g in p.groups[1:]]]})


@pytest.mark.parametrize("file, old, new, where, words", [
    ("public_health", "    group: tracing\n    due: 4h", "    group: tracers\n    due: 4h", "(top)",
     "group 'tracers' is not among groups"),
    ("public_health", "    due: 4h\n", "    due: 4 hours\n", "tasks[0].due", "not a duration"),
    ("public_health", "  I:\n    name_zh: Ⅰ级响应", "  V:\n    name_zh: Ⅰ级响应", "levels.V", "Input should be"),
    ("public_health", "    commander: dept_head@D10\n", "    commander: health_director@D10\n", "levels.IV.commander",
     "unknown position 'health_director'"),
    ("public_health", "    activate: [duty_chief, leading_leader, commander]", "    activate: [duty_chief, mayor]",
     "levels.IV.activate[1]", "Input should be"),
    ("flood_control", "    groups: [coordination, monitoring, rescue, evacuation]\n",
     "    groups: [coordination, monitoring, rescue]\n", "(top)", "task 'evacuate' belongs to group 'evacuation'"),
    ("flood_control", '{id: flood, name_zh: 汛期, start: "04-15", end: "10-15"}',
     '{id: flood, name_zh: 汛期, start: "05-01", end: "09-30"}', "dispatch.consult_in[0]", "one calendar for every plan"),
    ("work_safety", "    - {id: police, name_zh: 区公安分局治安队伍, post: dept_head@D08}",
     '    - {id: police, name_zh: 区公安分局治安队伍, post: dept_head@D08, mobile: "+8613700000000"}',
     "dispatch.forces[1]", "either a post or a mobile number"),
    ("forest_fire", "commander_policy: commander", "commander_policy: bugle", "(top)", "policy 'bugle'"),
    ("geological_hazard", "  mobile: \"+8613710000201\"", "  mobile: \"13710000201\"", "reinforcement.mobile", "E.164"),
    ("public_health", "commander_policy: commander\n", "messages:\n  overdue: \"【督办】请{assignee}落实\"\ncommander_policy: commander\n",
     "messages", "{assignee} is not one of its names"),
])
def test_mistakes_name_the_file_line_and_path(tmp_path, file, old, new, where, words):
    lib = tmp_path / "definitions"
    shutil.copytree(ROOT, lib, ignore=shutil.ignore_patterns("*.py", "__pycache__", "schema"))
    f = lib / "plans" / f"{file}.yaml"
    text = f.read_text()
    assert old in text
    f.write_text(text.replace(old, new, 1))
    errors = load_library(lib).errors
    shown = [str(e) for e in errors]
    assert any(e.file == str(f) and words in e.reason and f": {where}:" in str(e) for e in errors), shown
    assert all(e.line for e in errors if e.file == str(f))
