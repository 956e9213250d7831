"""考核 judged against the thresholds and weights of definitions/assessment/ (issue 22, items 3 and 4).

Plain functions over the scorecards of store/scorecards.py: a figure's value (`figure_value`, one reader per name of
definitions/schema/assessment.py FIGURES), the thresholds a unit breaks (`breaches`), its ranking score (`score`:
the weighted mean of its rates, 0–100) and the ranking of every unit (`ranking`). What the monthly bulletin 通报
compiles; each breach keeps the figure's refs, so a figure links to the records it came from.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from definitions.schema.assessment import FIGURES, AssessmentRules, Threshold
from store.review.common import rate


def _count(section: str, name: str) -> Callable[[dict], float | None]:
    def read(card: dict) -> float | None:
        sec = card.get(section)
        return float(sec[name]["value"]) if sec else None
    return read


def _rate(section: str, key: str) -> Callable[[dict], float | None]:
    def read(card: dict) -> float | None:
        sec = card.get(section)
        return sec.get(key) if sec else None
    return read


def _tasks_on_time(card: dict) -> float | None:
    sec = card.get("tasks")
    if not sec:
        return None
    done = sec["on_time"]["value"] + sec["late"]["value"] + sec["overdue"]["value"]
    return rate(sec["on_time"]["value"], done)


READERS: dict[str, Callable[[dict], float | None]] = {
    "callouts.answer_rate": _rate("callouts", "answer_rate"),
    "callouts.never": _count("callouts", "never"),
    "callouts.answered_late": _count("callouts", "answered_late"),
    "reporting.on_time_rate": _rate("reporting", "on_time_rate"),
    "reporting.late": _count("reporting", "late"),
    "reporting.missing": _count("reporting", "missing"),
    "spotchecks.answered_no": _count("spotchecks", "answered_no"),
    "spotchecks.followups_overdue": _count("spotchecks", "followups_overdue"),
    "tasks.on_time_rate": _tasks_on_time,
    "tasks.late": _count("tasks", "late"),
    "tasks.overdue": _count("tasks", "overdue"),
}
assert set(READERS) == set(FIGURES), "every figure the schema names has a reader here"


def figure_value(card: dict[str, Any], name: str) -> float | None:
    """The unit's figure, or None when the period has nothing of it (nobody called, no report owed…)."""
    return READERS[name](card)


def figure_refs(card: dict[str, Any], name: str) -> list[dict[str, Any]]:
    """The records a count figure came from (a rate: those of its numerator's section's figures that count against it)."""
    section, _, key = name.partition(".")
    sec = card.get(section) or {}
    if isinstance(sec.get(key), dict):
        return sec[key].get("refs", [])
    against = {"callouts": ("never", "answered_late"), "reporting": ("late", "missing"), "tasks": ("late", "overdue")}
    return [r for k in against.get(section, ()) for r in (sec.get(k) or {}).get("refs", [])]


def broken(t: Threshold, value: float | None) -> bool:
    if value is None:
        return False
    return (t.min is not None and value + 1e-9 < t.min) or (t.max is not None and value > t.max + 1e-9)


def breaches(card: dict[str, Any], rules: AssessmentRules) -> list[dict[str, Any]]:
    """The thresholds the unit breaks: figure, its Chinese name, the value, the bound, what the rule says, refs."""
    out = []
    for t in rules.thresholds:
        value = figure_value(card, t.figure)
        if broken(t, value):
            out.append({"figure": t.figure, "label_zh": t.label_zh, "value": value, "rate": FIGURES[t.figure][1] == "rate",
                        "min": t.min, "max": t.max, "rule_zh": t.describe_zh(), "refs": figure_refs(card, t.figure)})
    return out


def score(card: dict[str, Any], rules: AssessmentRules) -> float | None:
    """The ranking score 0–100: the weighted mean of the rates the unit has in the period; None without any."""
    total = weight = 0.0
    for w in rules.weights:
        value = figure_value(card, w.figure)
        if value is not None:
            total += w.weight * value
            weight += w.weight
    return round(100 * total / weight, 1) if weight else None


def ranking(cards: list[dict[str, Any]], rules: AssessmentRules) -> list[dict[str, Any]]:
    """Every unit with its score, figures and breaches, best first (units without a score last, by id); `rank` counts
    equal scores as one place."""
    rows = []
    for card in cards:
        rows.append({"unit_id": card["unit_id"], "name": card["name"], "kind": card["kind"],
                     "score": score(card, rules), "breaches": breaches(card, rules),
                     "figures": {name: figure_value(card, name) for name in FIGURES}})
    rows.sort(key=lambda r: (r["score"] is None, -(r["score"] or 0), r["unit_id"]))
    place, last = 0, object()
    for i, r in enumerate(rows, 1):
        if r["score"] is None:
            r["rank"] = None
            continue
        if r["score"] != last:
            place, last = i, r["score"]
        r["rank"] = place
    return rows
