"""Definitions that cannot work are refused when they are loaded, each with file:line and the reason:
cycles and alias bombs in the YAML, unknown positions and recipients, impossible durations,
policies that give nobody time to answer."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from definitions.loader import load_library

ROOT = Path(__file__).resolve().parents[2]

PLAN = """\
id: bad
name_zh: 测试方案
name_en: Test plan
category: heavy_rain
events: [测试]
message_zh: "{{event}}{{level}}预警 {{link}}"
policies:
  main:
    steps:
{steps}
tiers:
  - {{id: towns, name_zh: 乡镇, name_en: Towns, scope: area_towns, positions: [{position}], policy: {policy}}}
"""
GOOD_STEPS = ["- notify: [sms]", "- wait_ack: 10m", "- escalate: deputy", "- wait_ack: 5m", "- inform: duty_chief"]


def plan(steps=GOOD_STEPS, position="town_head", policy="main") -> str:
    return PLAN.format(steps="\n".join("      " + s for s in steps), position=position, policy=policy)


LOL = "\n".join([f"  l0: &l0 [{', '.join(['lol'] * 9)}]"]
                + [f"  l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]" for i in range(1, 9)])

CASES = {
    "yaml_cycle": (plan().replace("policies:\n  main:", "policies: &all\n  again: *all\n  main:"),
                   ["bad.yaml:7", "a cycle"]),
    "alias_bomb": (plan() + "extra:\n" + LOL + "\n", ["aliases expand to more than"]),
    "deep_nesting": (plan() + "extra: " + "[" * 5000 + "]" * 5000 + "\n", ["nested too deeply"]),
    "unknown_position_in_tier": (plan(position="ghost"), ["bad.yaml:16", "unknown position 'ghost'"]),
    "unknown_position_in_policy": (plan(steps=["- notify: [sms]", "- wait_ack: 10m", "- escalate: position:nobody",
                                               "- wait_ack: 5m"]), ["unknown position 'nobody'"]),
    "unknown_recipient": (plan(steps=["- notify: [sms]", "- wait_ack: 10m", "- escalate: boss", "- wait_ack: 5m"]),
                          ["bad.yaml:12", "unknown recipient 'boss'"]),
    "unknown_policy": (plan(policy="nowhere"), ["names policy 'nowhere'"]),
    "zero_wait": (plan(steps=["- notify: [sms]", "- wait_ack: 0s"]), ["bad.yaml:11", "must be positive"]),
    "negative_wait": (plan(steps=["- notify: [sms]", "- wait_ack: -5m"]), ["is not a duration"]),
    "wait_over_a_year": (plan(steps=["- notify: [sms]", "- wait_ack: 400d"]), ["longer than a year"]),
    "wait_in_words": (plan(steps=["- notify: [sms]", "- wait_ack: 10 minutes"]), ["write it like 30s, 10m"]),
    "repeat_without_wait": (plan(steps=["- notify: [sms]", "- repeat: 3", "- wait_ack: 5m"]),
                            ["repeat has no wait_ack before it"]),
    "no_time_to_answer": (plan(steps=["- notify: [sms]", "- wait_ack: 5m", "- escalate: deputy"]),
                          ["step 2: escalate is never followed by a wait_ack"]),
    "unknown_channel": (plan(steps=["- notify: [pager]", "- wait_ack: 5m"]), ["notify[0]"]),
}


@pytest.fixture
def defs(tmp_path: Path) -> Path:
    root = tmp_path / "definitions"
    shutil.copytree(ROOT / "definitions", root, ignore=shutil.ignore_patterns("*.py", "__pycache__", "schema"))
    return root


def test_the_shipped_definitions_load(defs):
    lib = load_library(defs)
    assert lib.ok, [str(e) for e in lib.errors]


@pytest.mark.parametrize("name", list(CASES))
def test_a_bad_call_out_plan_is_refused_with_file_line_and_reason(defs, name):
    text, words = CASES[name]
    (defs / "callout" / "bad.yaml").write_text(text, encoding="utf-8")
    lib = load_library(defs)  # how fast each refusal is: bench/hostile_input.py
    errors = [str(e) for e in lib.errors]
    assert errors and all("bad.yaml" in e for e in errors), errors
    assert any(all(w in e for w in words) for e in errors), (name, errors)
    assert "bad" not in lib.of("callout")


REPORTING = (ROOT / "definitions" / "reporting" / "major_strict.yaml").read_text(encoding="utf-8")


@pytest.mark.parametrize("change, words", [
    (("deadlines: {verbal: 30m, written: 1h}", "deadlines: {verbal: 30m, written: 20m}"),
     "the written report cannot be due before the verbal one"),
    (("reminder_before: 5m", "reminder_before: 20m"), "must be shorter than the shortest deadline"),
    (("  - when: {min_severity: II}\n    verbal: 15m\n    written: 30m",
      "  - when: {min_severity: II}\n    verbal: 0m\n    written: 30m"), "must be positive"),
    (("followup_every: {I: 30m, II: 1h, III: 2h, IV: 12h}", "followup_every: {I: 30m, II: 1h, III: 2h}"),
     "followup_every needs every severity"),
    (("  natural_disaster: deputy_district_head", "  natural_disaster: ghost_leader"), "unknown position 'ghost_leader'"),
    (("      - escalate: leading_leader\n", "      - escalate: the_boss\n"), "unknown recipient 'the_boss'"),
])
def test_bad_reporting_rules_are_refused(defs, change, words):
    old, new = change
    assert old in REPORTING
    (defs / "reporting" / "major_strict.yaml").write_text(REPORTING.replace(old, new), encoding="utf-8")
    lib = load_library(defs)
    errors = [str(e) for e in lib.errors]
    assert any("major_strict.yaml:" in e and words in e for e in errors), errors


def test_the_cli_says_what_is_wrong_and_fails(defs):
    from typer.testing import CliRunner

    from cli.main import app

    (defs / "callout" / "bad.yaml").write_text(CASES["yaml_cycle"][0], encoding="utf-8")
    result = CliRunner().invoke(app, ["definitions", "check", str(defs)])
    assert result.exit_code != 0
    assert "bad.yaml:7" in result.output and "a cycle" in result.output
