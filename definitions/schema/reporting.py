"""Incident reporting rules 信息报送规则: deadlines, follow-ups, recipients, triggers, escalation.

Seed 001 §三(二)2: verbal report to the district general duty office within 30
minutes of learning of an incident, written report within 1 hour; follow-up
reports 续报 until a final report 终报; the approved report goes to the district
committee office 区委办 and government office 区府办, and a department with a
vertical line reports to its city-level department as well. Jurisdictions
differ (some want 15 min / 30 min for major events), so all of it is data.
"""
from __future__ import annotations

import re
from datetime import timedelta
from enum import Enum
from typing import Literal

from pydantic import Field, field_validator, model_validator

from definitions.schema.common import Channel, Duration, Strict
from definitions.schema.escalation import DUTY_RECIPIENTS, Policy, recipient_error

CATEGORIES = ("natural_disaster", "accident", "public_health", "social_security")
CATEGORY_ZH = {"natural_disaster": "自然灾害", "accident": "事故灾难", "public_health": "公共卫生事件",
               "social_security": "社会安全事件"}
_E164 = re.compile(r"^\+[1-9]\d{6,14}$")


class Severity(str, Enum):
    """Event grades, most severe first: I 特别重大, II 重大, III 较大, IV 一般."""

    I = "I"  # noqa: E741
    II = "II"
    III = "III"
    IV = "IV"

    @property
    def rank(self) -> int:
        """0 for IV (一般) … 3 for I (特别重大): higher is more severe."""
        return ["IV", "III", "II", "I"].index(self.value)

    @property
    def zh(self) -> str:
        return {"I": "特别重大", "II": "重大", "III": "较大", "IV": "一般"}[self.value]

    def at_least(self, other: "Severity") -> bool:
        return self.rank >= Severity(other).rank


MAX_PERSONS = 10_000_000  # beyond any incident; keeps the figures within 64-bit storage


class Casualties(Strict):
    deaths: int = Field(default=0, ge=0, le=MAX_PERSONS)
    injured: int = Field(default=0, ge=0, le=MAX_PERSONS)
    missing: int = Field(default=0, ge=0, le=MAX_PERSONS)
    trapped: int = Field(default=0, ge=0, le=MAX_PERSONS)


MAX_AREA_HA = 10_000_000.0  # 10 million hectares: more than a province's farmland
MAX_LOSS_WAN = 1_000_000_000.0  # 万元: ten trillion yuan


class DisasterFigures(Strict):
    """灾情统计: the structured figures a report carries, each the running total (累计) at the report's time; deaths,
    injured and missing are the report's casualties. A later report may not give a smaller total than the last
    approved one unless it says why (`correction`, 核减说明)."""

    affected_population: int = Field(default=0, ge=0, le=MAX_PERSONS * 100, description="受灾人口(人)")
    relocated: int = Field(default=0, ge=0, le=MAX_PERSONS * 100, description="紧急转移安置人数(人)")
    houses_collapsed: int = Field(default=0, ge=0, le=MAX_PERSONS, description="倒塌房屋(间)")
    houses_damaged: int = Field(default=0, ge=0, le=MAX_PERSONS, description="损坏房屋(间)")
    crop_area_ha: float = Field(default=0, ge=0, le=MAX_AREA_HA, allow_inf_nan=False, description="农作物受灾面积(公顷)")
    direct_loss_wan: float = Field(default=0, ge=0, le=MAX_LOSS_WAN, allow_inf_nan=False, description="直接经济损失(万元)")
    correction: str | None = Field(default=None, max_length=2000, description="核减说明: why a total is smaller than before")


FIGURE_FIELDS = ("affected_population", "relocated", "houses_collapsed", "houses_damaged", "crop_area_ha",
                 "direct_loss_wan")
FIGURES_ZH = {"affected_population": ("受灾人口", "人"), "relocated": ("紧急转移安置", "人"),
              "houses_collapsed": ("倒塌房屋", "间"), "houses_damaged": ("损坏房屋", "间"),
              "crop_area_ha": ("农作物受灾面积", "公顷"), "direct_loss_wan": ("直接经济损失", "万元"),
              "deaths": ("死亡", "人"), "missing": ("失踪", "人"), "injured": ("受伤", "人")}


class Condition(Strict):
    """All given parts must hold (an empty condition always holds)."""

    categories: list[str] | None = None
    subtypes: list[str] | None = None
    min_severity: Severity | None = None
    deaths_at_least: int | None = Field(default=None, ge=1)
    injured_at_least: int | None = Field(default=None, ge=1)
    missing_at_least: int | None = Field(default=None, ge=1)
    trapped_at_least: int | None = Field(default=None, ge=1)

    @field_validator("categories")
    @classmethod
    def _categories(cls, v: list[str] | None) -> list[str] | None:
        for c in v or []:
            if c not in CATEGORIES:
                raise ValueError(f"unknown category {c!r}: use {', '.join(CATEGORIES)}")
        return v

    def holds(self, category: str, subtype: str, severity: Severity, casualties: Casualties) -> bool:
        return ((self.categories is None or category in self.categories)
                and (self.subtypes is None or subtype in self.subtypes)
                and (self.min_severity is None or severity.at_least(self.min_severity))
                and casualties.deaths >= (self.deaths_at_least or 0)
                and casualties.injured >= (self.injured_at_least or 0)
                and casualties.missing >= (self.missing_at_least or 0)
                and casualties.trapped >= (self.trapped_at_least or 0))


class Deadlines(Strict):
    verbal: Duration = Field(description="口头报告: after 接报 (the time the duty office learnt of the incident)")
    written: Duration = Field(description="书面报告: after 接报")

    @model_validator(mode="after")
    def _order(self) -> "Deadlines":
        if self.written < self.verbal:
            raise ValueError("the written report cannot be due before the verbal one")
        return self


class DeadlineRule(Deadlines):
    """Deadlines for incidents matching `when`; the first matching rule wins, else the default."""

    when: Condition


class SeverityRule(Strict):
    """An incident is at least `level` when any of the given casualty figures is reached."""

    level: Severity
    deaths: int | None = Field(default=None, ge=1)
    injured: int | None = Field(default=None, ge=1)
    missing: int | None = Field(default=None, ge=1)

    def reached(self, c: Casualties) -> bool:
        return any(limit is not None and got >= limit
                   for limit, got in ((self.deaths, c.deaths), (self.injured, c.injured), (self.missing, c.missing)))


class Recipient(Strict):
    """Who receives approved written reports: a named office with its number, or a position in the directory."""

    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    name_zh: str
    name_en: str = ""
    mobile: str | None = Field(default=None, description="E.164, e.g. +8657188000001")
    im_id: str | None = None
    position: str | None = Field(default=None, description="a position code: its holder in the district receives it")
    cc: bool = Field(default=False, description="抄报: it receives a copy (its SMS says 【抄报】), e.g. 消防救援")
    when: Condition | None = Field(default=None, description="only for incidents where this holds (e.g. fires, "
                                                              "hazardous chemicals: 抄报消防救援); None: every incident")

    @field_validator("mobile")
    @classmethod
    def _e164(cls, v: str | None) -> str | None:
        if v is not None and not _E164.match(v):
            raise ValueError(f"{v!r} is not an E.164 number (like +8657188000001)")
        return v

    @model_validator(mode="after")
    def _one_address(self) -> "Recipient":
        if (self.mobile is None and self.im_id is None) == (self.position is None):
            raise ValueError("a recipient has either a number (mobile/im_id) or a position, not both and not neither")
        return self


class UpwardRecipient(Strict):
    """Who the duty office reports upward to (上报): the city's duty office 市应急管理局值班室, the province's for major
    events. Its verbal and written reports go through the city line (activities/gateways/cityline.py); when the
    platform cannot be reached after its retries, the report goes by SMS to `mobile` instead."""

    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$", description="its id on the city platform's side too (`to`)")
    name_zh: str
    name_en: str = ""
    mobile: str = Field(description="E.164: the SMS fallback, e.g. +8657188000001")
    min_severity: Severity | None = Field(default=None, description="only for incidents of this grade or worse "
                                                                    "(the province: II 重大)")
    reports: list[Literal["verbal", "written", "followup", "final"]] = Field(
        default_factory=lambda: ["verbal", "written", "followup", "final"], description="which reports it receives")

    @field_validator("mobile")
    @classmethod
    def _e164(cls, v: str) -> str:
        if not _E164.match(v):
            raise ValueError(f"{v!r} is not an E.164 number (like +8657188000001)")
        return v

    def receives(self, kind: str, severity: Severity) -> bool:
        return kind in self.reports and (self.min_severity is None or severity.at_least(self.min_severity))


SECTOR_LEADER = "sector_leader"


class Trigger(Strict):
    """When the facts reach `when`, call someone (with acknowledgement) by `policy`."""

    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    name_zh: str
    when: Condition
    call: str = Field(description="sector_leader (the district leader in charge of the category), a duty role, "
                                  "or position:<code>")
    policy: str
    message_zh: str = Field(description="{title} {place} {deaths} {injured} {missing} {trapped} {severity} are filled in")

    @field_validator("call")
    @classmethod
    def _call(cls, v: str) -> str:
        if v == SECTOR_LEADER or v in DUTY_RECIPIENTS:
            return v
        if v.startswith("position:") and v.split(":", 1)[1]:
            return v
        raise ValueError(f"call {v!r}: use sector_leader, one of {', '.join(DUTY_RECIPIENTS)}, or position:<code>")


class Roles(Strict):
    """Which duty roles may do each step (admin is never enough on its own: these are signatures)."""

    verbal: list[str] = Field(default_factory=lambda: ["duty_staff", "duty_cadre", "duty_chief", "leading_leader"])
    draft: list[str] = Field(default_factory=lambda: ["duty_cadre"])
    review: list[str] = Field(default_factory=lambda: ["leading_leader"])
    submit: list[str] = Field(default_factory=lambda: ["duty_cadre", "duty_chief", "leading_leader"])

    @field_validator("verbal", "draft", "review", "submit")
    @classmethod
    def _known(cls, v: list[str]) -> list[str]:
        known = ("duty_staff", "duty_cadre", "duty_chief", "leading_leader", "commander")
        for r in v:
            if r not in known:
                raise ValueError(f"unknown role {r!r}: use {', '.join(known)}")
        if not v:
            raise ValueError("at least one role")
        return v


class ReportingRules(Strict):
    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    name_zh: str
    name_en: str
    default: bool = False
    deadlines: Deadlines = Field(description="the jurisdiction's default: 30m verbal, 1h written in seed 001")
    stricter: list[DeadlineRule] = Field(default_factory=list, description="first match wins")
    severity: list[SeverityRule] = Field(default_factory=list, description="grade from casualties; the highest reached")
    reminder_before: Duration = Field(description="a reminder this long before each deadline")
    unit_report_within: Duration | None = Field(
        default=None, description="a town or department reports to the duty office within this long of 知悉 (known_at); "
                                  "later is its 迟报 (report.unit.late). None: not measured")
    remind: list[str] = Field(default_factory=lambda: ["duty_cadre"], description="duty roles reminded")
    followup_every: dict[Severity, Duration] = Field(description="续报 interval after the previous report, by severity")
    recipients: list[Recipient] = Field(min_length=1)
    vertical_sync_within: Duration = Field(
        default=timedelta(minutes=10), description="拉条: a department reporting to its city department reports to the "
                                                   "district within this long of it (report.vertical.gap beyond)")
    upward: list[UpwardRecipient] = Field(default_factory=list, description="上报: the city's (and the province's) "
                                          "duty office, through the city line with SMS as its fallback")
    city_lines: dict[str, Recipient] = Field(
        default_factory=dict, description="department org unit id -> its city-level department (垂直管理)")
    sector_leaders: dict[str, str] = Field(
        default_factory=dict, description="category or category/subtype -> position code of the district leader in charge")
    policies: dict[str, Policy] = Field(min_length=1)
    overdue_policy: str = Field(description="escalation when a deadline passes: the duty chief, then the leading leader")
    receipt_policy: str = Field(description="how recipients are asked to confirm receipt (回执)")
    triggers: list[Trigger] = Field(default_factory=list)
    roles: Roles = Field(default_factory=Roles)
    report_channels: list[Channel] = Field(default_factory=lambda: [Channel.sms])

    @field_validator("remind")
    @classmethod
    def _remind(cls, v: list[str]) -> list[str]:
        for r in v:
            if r not in DUTY_RECIPIENTS:
                raise ValueError(f"unknown duty role {r!r}: use {', '.join(DUTY_RECIPIENTS)}")
        return v

    @field_validator("sector_leaders")
    @classmethod
    def _sectors(cls, v: dict[str, str]) -> dict[str, str]:
        for key in v:
            if key.split("/", 1)[0] not in (*CATEGORIES, "default"):
                raise ValueError(f"sector {key!r}: use a category ({', '.join(CATEGORIES)}), category/subtype or default")
        return v

    @model_validator(mode="after")
    def _refs(self) -> "ReportingRules":
        missing = [s.value for s in Severity if s not in self.followup_every]
        if missing:
            raise ValueError(f"followup_every needs every severity; missing {', '.join(missing)}")
        names = [self.overdue_policy, self.receipt_policy, *(t.policy for t in self.triggers)]
        for name in names:
            if name not in self.policies:
                raise ValueError(f"policy {name!r} is not among policies ({', '.join(self.policies)})")
        for pol_name, pol in self.policies.items():
            for step in pol.steps:
                who = step.escalate or step.inform
                if who in ("deputy", "superior") and pol_name in (self.overdue_policy, self.receipt_policy):
                    raise ValueError(f"policy {pol_name!r}: {who} means nothing for a duty office or a recipient; "
                                     "name a duty role or position:<code>")
                if who is not None and (err := recipient_error(who)):
                    raise ValueError(err)
        shortest = min([self.deadlines.verbal, *(r.verbal for r in self.stricter)])
        if self.reminder_before >= shortest:
            raise ValueError(f"reminder_before ({self.reminder_before}) must be shorter than the shortest deadline ({shortest})")
        ids = [r.id for r in self.recipients]
        if len(ids) != len(set(ids)):
            raise ValueError("recipient ids repeat")
        if any(t.call == SECTOR_LEADER for t in self.triggers) and not self.sector_leaders:
            raise ValueError("a trigger calls the sector_leader but sector_leaders is empty")
        return self

    # --------------------------------------------------------------- decisions

    def grade(self, given: Severity | None, casualties: Casualties) -> Severity:
        """The given severity, raised to what the casualty figures reach."""
        best = given or Severity.IV
        for rule in self.severity:
            if rule.reached(casualties) and rule.level.rank > best.rank:
                best = rule.level
        return best

    def deadlines_for(self, category: str, subtype: str, severity: Severity, casualties: Casualties) -> Deadlines:
        for rule in self.stricter:
            if rule.when.holds(category, subtype, severity, casualties):
                return Deadlines(verbal=rule.verbal, written=rule.written)
        return self.deadlines

    def sector_leader(self, category: str, subtype: str) -> str | None:
        return (self.sector_leaders.get(f"{category}/{subtype}") or self.sector_leaders.get(category)
                or self.sector_leaders.get("default"))

    def positions(self) -> set[str]:
        out = {r.position for r in [*self.recipients, *self.city_lines.values()] if r.position}
        out |= set(self.sector_leaders.values())
        out |= {t.call.split(":", 1)[1] for t in self.triggers if t.call.startswith("position:")}
        for pol in self.policies.values():
            out |= pol.positions()
        return out
