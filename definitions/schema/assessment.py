"""考核 thresholds and weights as data (issue 22, item 4): ``definitions/assessment/*.yaml``.

A file names the figures of the scorecards (store/scorecards.py) a unit is judged on:

- ``thresholds``: each a figure with a ``min`` or a ``max`` (叫应 answered within the wait ≥ 95%, 迟报 0, 漏报 0…);
  a unit whose figure breaks one is "below threshold" in the monthly bulletin 通报. A unit without the figure in the
  period (nobody of it was called) breaks nothing.
- ``drills``: the drill programme's weeks (store/drillweeks.py): at most ``weeks_below_max`` weeks of the period
  below the weekly minimum (0: every week meets it).
- ``weights``: the ranking score, 0–100: the weighted mean of the rates named (each 0–1) that the unit has in the
  period, times 100; a unit with none of them is not ranked.

The figure names are `FIGURES` here; store/assessment.py reads each from a scorecard (a test keeps the two equal).
"""
from __future__ import annotations

from typing import Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from definitions.schema.common import Strict

# name -> (Chinese name, rate | count)
FIGURES: dict[str, tuple[str, str]] = {
    "callouts.answer_rate": ("叫应时限内应答率", "rate"),
    "callouts.never": ("叫应未应答人次", "count"),
    "callouts.answered_late": ("叫应逾期应答人次", "count"),
    "reporting.on_time_rate": ("信息报送按时率", "rate"),
    "reporting.late": ("迟报", "count"),
    "reporting.missing": ("漏报", "count"),
    "spotchecks.answered_no": ("六问回答“否”", "count"),
    "spotchecks.followups_overdue": ("六问整改逾期", "count"),
    "tasks.on_time_rate": ("督办按时办结率", "rate"),
    "tasks.late": ("督办逾期办结", "count"),
    "tasks.overdue": ("督办逾期未办", "count"),
}
Figure = Literal[tuple(FIGURES)]  # type: ignore[valid-type]


class Threshold(Strict):
    figure: Figure = Field(description="a scorecard figure (definitions/schema/assessment.py FIGURES)")
    min: float | None = Field(default=None, ge=0, description="the figure must be at least this")
    max: float | None = Field(default=None, ge=0, description="the figure must be at most this")
    name_zh: str = Field(default="", max_length=60, description="how the bulletin names it; default the figure's name")

    @field_validator("min", "max")
    @classmethod
    def _a_rate_is_a_fraction(cls, v: float | None, info: ValidationInfo) -> float | None:
        figure = info.data.get("figure")
        if v is not None and figure in FIGURES and FIGURES[figure][1] == "rate" and v > 1:
            raise ValueError(f"{figure} is a rate between 0 and 1 (95% is 0.95)")
        return v

    @model_validator(mode="after")
    def _one_bound(self) -> "Threshold":
        if (self.min is None) == (self.max is None):
            raise ValueError("give exactly one of 'min' or 'max'")
        return self

    @property
    def label_zh(self) -> str:
        return self.name_zh or FIGURES[self.figure][0]

    def describe_zh(self) -> str:
        rate = FIGURES[self.figure][1] == "rate"
        bound = self.min if self.min is not None else self.max
        value = f"{bound:.0%}" if rate else f"{bound:g}"
        return f"{self.label_zh}{'不低于' if self.min is not None else '不高于'}{value}"


class DrillThreshold(Strict):
    weeks_below_max: int = Field(default=0, ge=0, description="weeks of the period allowed below the weekly minimum")


class Weight(Strict):
    figure: Figure
    weight: float = Field(gt=0, le=100)

    @property
    def label_zh(self) -> str:
        return FIGURES[self.figure][0]

    @field_validator("figure")
    @classmethod
    def _a_rate(cls, v: str) -> str:
        if FIGURES[v][1] != "rate":
            raise ValueError(f"{v} is a count; the ranking score weighs rates only "
                             f"({', '.join(f for f, (_, k) in FIGURES.items() if k == 'rate')})")
        return v


class AssessmentRules(Strict):
    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    name_zh: str
    name_en: str = ""
    default: bool = False
    thresholds: list[Threshold] = Field(min_length=1)
    drills: DrillThreshold = Field(default_factory=DrillThreshold)
    weights: list[Weight] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique(self) -> "AssessmentRules":
        for name, items in (("thresholds", self.thresholds), ("weights", self.weights)):
            seen = [(t.figure, t.min is not None) if name == "thresholds" else t.figure for t in items]
            if len(seen) != len(set(seen)):
                raise ValueError(f"{name}: a figure appears twice")
        return self
