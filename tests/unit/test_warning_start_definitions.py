"""A plan's warning start conditions (`on_warnings`, 预警即启动条件) as data: what the shipped plans propose for which
warning, matched through the call-out plan choice; mistakes name file:line and path."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from definitions.loader import load_library, load_or_raise
from definitions.schema.common import Level

ROOT = Path(__file__).resolve().parents[2] / "definitions"


@pytest.mark.parametrize("event, headline, level, expected", [
    ("暴雨", "", Level.orange, [("flood_control", "IV")]),  # the flood plan's Ⅳ级: 发布暴雨橙色预警
    ("暴雨", "", Level.red, [("flood_control", "III")]),  # Ⅲ级: 发布暴雨红色预警
    ("暴雨", "", Level.yellow, []),
    ("", "青溪区气象台发布大暴雨橙色预警", Level.orange, [("flood_control", "IV")]),  # by the headline, as the call-out
    ("山洪", "受强降雨影响…山洪灾害红色预警", Level.red, [("geological_hazard", "III")]),  # not the rainstorm's
    ("地质灾害气象风险", "", Level.orange, [("geological_hazard", "IV")]),
    ("森林火险", "", Level.red, [("forest_fire", "IV")]),
    ("台风", "", Level.red, []),  # no plan names a typhoon warning as its start condition
])
def test_a_warning_meets_the_start_condition_its_call_out_plan_selects(event, headline, level, expected):
    lib = load_or_raise(ROOT)
    plan = lib.callout_plan_for(event, level, headline=headline)
    found = [(loaded.model.id, rule.response_level.value) for loaded, rule in lib.response_proposals(plan.model.id, level)]
    assert found == expected


@pytest.mark.parametrize("file, old, new, where, words", [
    ("flood_control", "  - {events: [暴雨], level: orange, response_level: IV}",
     "  - {events: [暴雨, 沙尘暴], level: orange, response_level: IV}", "on_warnings[0].events[1]", "selects no call-out plan"),
    ("flood_control", "  - {events: [暴雨], level: red, response_level: III}",
     "  - {events: [暴雨], level: red, response_level: II}", "on_warnings[1].response_level",
     "the leading leader, who may not activate at Ⅱ级"),
    ("flood_control", "  - {events: [暴雨], level: red, response_level: III}",
     "  - {events: [暴雨], level: orange, response_level: III}", "on_warnings[1].events[0]", "named twice"),
    ("forest_fire", "  - {events: [森林火险], level: orange, response_level: IV}",
     "  - {events: [森林火险], level: purple, response_level: IV}", "on_warnings[0].level", "Input should be"),
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
