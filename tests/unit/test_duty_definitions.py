"""The duty day's definitions: the shipped ones load; mistakes are named by file:line, path and reason."""
from __future__ import annotations

import shutil
from pathlib import Path

from definitions.loader import load_library

ROOT = Path(__file__).resolve().parents[2] / "definitions"


def copy(tmp_path: Path) -> Path:
    defs = tmp_path / "definitions"
    shutil.copytree(ROOT, defs, ignore=shutil.ignore_patterns("*.py", "__pycache__", "schema"))
    return defs


def errors(defs: Path) -> list[str]:
    return [str(e) for e in load_library(defs).errors]


def test_the_shipped_duty_day_loads():
    lib = load_library(ROOT)
    assert lib.ok, lib.errors
    duty = lib.duty()
    assert [q.id for q in duty.spotcheck.questions] == ["received", "on_duty", "patrolled", "evacuation", "supplies",
                                                        "arrangements"]
    assert sum(d.schedule.per_week() for d in duty.drills.programme if d.counts_as == "district") >= 2
    assert sum(d.schedule.per_week() for d in duty.drills.programme if d.counts_as == "towns") >= 3
    assert duty.freshness.round_by == "04-20" and duty.handover.take_over_within.total_seconds() == 1800
    assert set(duty.versions) == {"drills", "spotcheck", "handover", "freshness", "readiness"}
    assert [s.kind for s in duty.readiness.policy.steps] == ["notify", "wait_ack", "notify", "wait_ack", "escalate",
                                                             "wait_ack", "inform"]


def test_too_few_drills_a_week_is_an_error(tmp_path):
    defs = copy(tmp_path)
    f = defs / "duty" / "drills.yaml"
    f.write_text(f.read_text().replace("days: [tue, fri]", "days: [tue]"))
    errs = errors(defs)
    assert any("drills.yaml" in e and "district drills happen 1 times a week; the programme asks at least 2" in e
               for e in errs), errs


def test_a_bad_time_and_an_unknown_position_name_their_line(tmp_path):
    defs = copy(tmp_path)
    f = defs / "duty" / "handover.yaml"
    f.write_text(f.read_text().replace('shift_changes: ["08:30"]', 'shift_changes: ["8:30am"]'))
    f = defs / "duty" / "spotcheck.yaml"
    f.write_text(f.read_text().replace("position: town_head", "position: town_boss"))
    errs = errors(defs)
    line = next(n for n, text in enumerate((defs / "duty" / "handover.yaml").read_text().splitlines(), 1)
                if "shift_changes" in text)
    assert any(f"handover.yaml:{line}: handover.shift_changes" in e and "write it like 08:30" in e for e in errs), errs
    assert not any("found 0" in e for e in errs), "a file that failed to load is not also reported missing"
    assert any("spotcheck.yaml" in e and "unknown position 'town_boss'" in e for e in errs), errs


def test_a_drill_name_says_drill_and_each_section_appears_once(tmp_path):
    defs = copy(tmp_path)
    f = defs / "duty" / "drills.yaml"
    f.write_text(f.read_text().replace("name_zh: 区级部门应急值守连通性演练", "name_zh: 区级部门连通性测试"))
    shutil.copy(defs / "duty" / "handover.yaml", defs / "duty" / "handover2.yaml")
    t = defs / "duty" / "handover2.yaml"
    t.write_text(t.read_text().replace("id: handover", "id: handover_two"))
    errs = errors(defs)
    assert any("drills.programme[0].name_zh" in e and "says 演练" in e for e in errs), errs
    assert any("the duty section 'handover' appears in exactly one file; found 2" in e for e in errs), errs


def test_a_schedules_timing_reads_in_chinese():
    from definitions.schema.duty import Timing

    assert Timing(every="10m").describe_zh() == "每10分钟"
    assert Timing(every="2h").describe_zh() == "每2小时"
    assert Timing(days=["mon", "thu"], at=["09:00"]).describe_zh() == "每周一、四 09:00"
