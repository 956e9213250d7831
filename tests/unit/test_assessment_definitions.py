"""考核 thresholds and weights as data (definitions/assessment/, definitions/schema/assessment.py): the shipped file
loads, `yingji definitions check` names the file, line, path and problem of a bad one, and store/assessment.py judges
and ranks scorecards with them."""
from __future__ import annotations

import shutil
from pathlib import Path

from typer.testing import CliRunner

from cli.main import app
from definitions.loader import load_library
from definitions.schema.assessment import FIGURES
from store.assessment import READERS, breaches, figure_value, ranking, score

ROOT = Path(__file__).resolve().parents[2]


def test_the_shipped_thresholds_load():
    lib = load_library(ROOT / "definitions")
    assert lib.ok, lib.errors
    rules = lib.assessment().model
    assert set(READERS) == set(FIGURES)
    by = {t.figure: t for t in rules.thresholds}
    assert by["callouts.answer_rate"].min == 0.95 and by["reporting.late"].max == 0 and by["reporting.missing"].max == 0
    assert by["callouts.answer_rate"].describe_zh() == "叫应时限内应答率不低于95%"
    assert by["reporting.late"].describe_zh() == "迟报不高于0"
    assert rules.drills.weeks_below_max == 0 and sum(w.weight for w in rules.weights) == 100


def _line(path: Path, needle: str) -> int:
    """The line of `needle`'s last occurrence."""
    return max(i for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if needle in line)


def test_definitions_check_names_a_bad_thresholds_file(tmp_path):
    lib = tmp_path / "definitions"
    shutil.copytree(ROOT / "definitions", lib)
    f = lib / "assessment" / "thresholds.yaml"
    text = f.read_text(encoding="utf-8")
    text = text.replace("figure: reporting.late\n    max: 0", "figure: reporting.lateness\n    max: 0", 1)
    text = text.replace("min: 0.95", "min: 95", 1)
    text = text.replace("  - figure: tasks.on_time_rate\n    weight: 15", "  - figure: tasks.overdue\n    weight: 15", 1)
    f.write_text(text, encoding="utf-8")

    result = CliRunner().invoke(app, ["definitions", "check", str(lib)], catch_exceptions=False)
    assert result.exit_code == 1, result.output
    out = result.output
    assert f"{f}:{_line(f, 'reporting.lateness')}: thresholds[1].figure: " in out, out
    assert "'callouts.answer_rate'" in out  # the problem lists the figures known
    assert f"{f}:{_line(f, 'min: 95')}: thresholds[0].min: " in out and "95% is 0.95" in out, out
    assert f"{f}:{_line(f, 'figure: tasks.overdue')}: weights[2].figure: " in out and "weighs rates only" in out, out
    assert "3 errors" in out


def test_two_defaults_and_a_missing_bound_are_refused(tmp_path):
    lib = tmp_path / "definitions"
    shutil.copytree(ROOT / "definitions", lib)
    other = lib / "assessment" / "strict.yaml"
    other.write_text("id: strict\nname_zh: 从严\ndefault: true\nthresholds:\n  - figure: reporting.late\n"
                     "weights:\n  - figure: reporting.on_time_rate\n    weight: 1\n", encoding="utf-8")
    errors = [str(e) for e in load_library(lib).errors]
    assert any(e.startswith(f"{other}:5: thresholds[0]: ") and "exactly one of 'min' or 'max'" in e for e in errors), errors
    other.write_text("id: strict\nname_zh: 从严\ndefault: true\nthresholds:\n  - figure: reporting.late\n    max: 0\n"
                     "weights:\n  - figure: reporting.on_time_rate\n    weight: 1\n", encoding="utf-8")
    errors = [str(e) for e in load_library(lib).errors]
    assert errors == [f"{lib / 'assessment'}: (top): exactly one assessment file is the default; found 2"]


def _fig(n: int) -> dict:
    return {"value": n, "refs": [{"subject": f"s{i}", "link": f"/console/replay/s{i}"} for i in range(n)]}


def card(uid: str, answered: int, called: int, late: int = 0, missing: int = 0, on_time: int = 0) -> dict:
    owed = on_time + late + missing
    return {"unit_id": uid, "name": f"单位{uid}", "kind": "town",
            "callouts": {"called": _fig(called), "answered": _fig(answered), "never": _fig(called - answered),
                         "answered_late": _fig(0), "answer_rate": answered / called if called else None} if called else None,
            "reporting": {"owed": _fig(owed), "on_time": _fig(on_time), "late": _fig(late), "missing": _fig(missing),
                          "on_time_rate": on_time / owed if owed else None} if owed else None,
            "spotchecks": None, "tasks": None, "workorders": None}


def test_breaches_scores_and_the_ranking():
    rules = load_library(ROOT / "definitions").assessment().model
    good = card("T1", 20, 20, on_time=2)
    slow = card("T2", 18, 20, late=1, on_time=1)
    quiet = card("T3", 0, 0)
    assert figure_value(slow, "callouts.answer_rate") == 0.9 and figure_value(quiet, "callouts.answer_rate") is None
    b = breaches(slow, rules)
    assert [x["figure"] for x in b] == ["callouts.answer_rate", "reporting.late"]
    assert b[0]["rule_zh"] == "叫应时限内应答率不低于95%" and len(b[0]["refs"]) == 2, "the two never answered"
    assert b[1]["value"] == 1 and b[1]["refs"] == [{"subject": "s0", "link": "/console/replay/s0"}]
    assert breaches(good, rules) == [] and breaches(quiet, rules) == []
    assert score(good, rules) == 100.0
    assert score(slow, rules) == round(100 * (50 * 0.9 + 35 * 0.5) / 85, 1)
    assert score(quiet, rules) is None
    rows = ranking([quiet, slow, good, card("T4", 20, 20, on_time=1)], rules)
    assert [(r["unit_id"], r["rank"]) for r in rows] == [("T1", 1), ("T4", 1), ("T2", 3), ("T3", None)]


async def test_the_definitions_page_shows_the_thresholds(db_url):
    from api.app import create_app
    from store.auth import create_token
    from store.db import session_scope
    from tests.factories import small_district
    from tests.helpers import console_login

    with session_scope() as s:
        people = small_district(s)
        token = create_token(s, "supervisor", person_id=people["duty_chief"], label="sup")
    web = await console_login(create_app(temporal_client=object()), token)
    try:
        page = (await web.get("/console/definitions")).text
    finally:
        await web.aclose()
    assert "考核指标与权重" in page and "叫应时限内应答率不低于95%" in page and "迟报不高于0" in page
    assert "信息报送按时率 35" in page


def test_a_threshold_of_inf_or_nan_is_refused():
    """YAML's `.inf` and `.nan` are floats: `max: .inf` passed `ge=0` and would reach the bulletin's JSON (refused by
    PostgreSQL); every definition model's floats are finite (definitions/schema/common.py Strict)."""
    import pytest
    from pydantic import ValidationError

    from definitions.schema.assessment import Threshold

    for bad in (float("inf"), float("nan")):
        with pytest.raises(ValidationError, match="max\n.*finite number"):
            Threshold(figure="callouts.never", max=bad)
