"""Reporting rules as data: the shipped files load, decisions follow the data, mistakes name file:line."""
from __future__ import annotations

import shutil
from datetime import timedelta
from pathlib import Path

import pytest

from definitions.loader import load_library, load_or_raise
from definitions.schema.reporting import Casualties, Severity

ROOT = Path(__file__).resolve().parents[2] / "definitions"


def rules(name: str = "district"):
    loaded = load_or_raise(ROOT).reporting_rules(None if name == "district" else name)
    assert loaded is not None
    return loaded.model


def test_the_default_is_the_district_and_deadlines_are_data():
    d = rules()
    assert d.id == "district"
    assert d.deadlines_for("accident", "", Severity.I, Casualties(deaths=40)).verbal == timedelta(minutes=30)
    strict = rules("major_strict")
    assert strict.deadlines_for("accident", "", Severity.II, Casualties()).written == timedelta(minutes=30)
    assert strict.deadlines_for("accident", "", Severity.IV, Casualties()).written == timedelta(hours=1)
    assert strict.deadlines_for("natural_disaster", "", Severity.IV, Casualties(trapped=1)).verbal == timedelta(minutes=15)


def test_grade_from_casualties_never_lowers_a_given_severity():
    d = rules()
    assert d.grade(None, Casualties()) == Severity.IV
    assert d.grade(None, Casualties(deaths=3)) == Severity.III
    assert d.grade(None, Casualties(injured=50)) == Severity.II
    assert d.grade(Severity.II, Casualties(deaths=1)) == Severity.II
    assert d.followup_every[Severity.III] == timedelta(hours=4)
    assert d.sector_leader("accident", "道路交通") == "deputy_district_head"


@pytest.mark.parametrize("old, new, where, words", [
    ("verbal: 30m, written: 1h}", "verbal: 30x, written: 1h}", "deadlines.verbal", "not a duration"),
    ("verbal: 30m, written: 1h}", "verbal: 2h, written: 1h}", "deadlines", "before the verbal"),
    ("reminder_before: 10m", "reminder_before: 45m", "(top)", "reminder_before"),
    ("accident: deputy_district_head", "accident: vice_mayor", "sector_leaders.accident", "unknown position 'vice_mayor'"),
    ("followup_every: {I: 1h, II: 2h, III: 4h, IV: 24h}", "followup_every: {I: 1h}", "(top)", "missing II, III, IV"),
    ('mobile: "+8613710000001"', 'mobile: "13710000001"', "recipients[0].mobile", "E.164"),
    ("overdue_policy: overdue", "overdue_policy: nope", "(top)", "policy 'nope'"),
    ("call: sector_leader", "call: mayor", "triggers[0].call", "call 'mayor'"),
    ("when: {deaths_at_least: 1}", "when: {categories: [fire]}", "triggers[0].when.categories", "unknown category"),
])
def test_mistakes_name_the_file_line_and_path(tmp_path, old, new, where, words):
    lib = tmp_path / "definitions"
    shutil.copytree(ROOT, lib, ignore=shutil.ignore_patterns("*.py", "__pycache__", "schema"))
    f = lib / "reporting" / "district.yaml"
    text = f.read_text()
    assert old in text
    f.write_text(text.replace(old, new, 1))
    errors = load_library(lib).errors
    assert errors, "expected an error"
    shown = [str(e) for e in errors]
    assert any(str(f) in s and words in s and f": {where}:" in s for s in shown), shown
    assert all(e.line for e in errors if e.file == str(f))


def test_exactly_one_default(tmp_path):
    lib = tmp_path / "definitions"
    shutil.copytree(ROOT, lib, ignore=shutil.ignore_patterns("*.py", "__pycache__", "schema"))
    strict = lib / "reporting" / "major_strict.yaml"
    strict.write_text(strict.read_text().replace("id: major_strict\n", "id: major_strict\ndefault: true\n"))
    assert any("exactly one set of reporting rules is the default; found 2" in str(e) for e in load_library(lib).errors)
