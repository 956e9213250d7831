"""The duty day 值班日常 as data: shift handover 交接班, drills 演练, 六问 spot checks, contact freshness.

Each file in ``definitions/duty/`` holds one or more sections (``drills``,
``spotcheck``, ``handover``, ``freshness``); across the folder every section
appears exactly once (`merge_duty`). Recurring procedures are Temporal Schedules
built from these sections (api/services/duty/); each run gets the section as a
snapshot in its input, so editing a file never changes a running workflow.
"""
from __future__ import annotations

import re
from datetime import timedelta
from typing import Literal

from pydantic import Field, field_validator, model_validator

from definitions.schema.common import Duration, Level, Strict
from definitions.schema.escalation import Policy

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DAYS_ZH = dict(zip(DAYS, "一二三四五六日"))
_HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
_MMDD = re.compile(r"^(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])$")
SECTIONS = ("drills", "spotcheck", "handover", "freshness")
OPTIONAL_SECTIONS = ("readiness",)  # at most once across the folder; a default when no file has it


def _hhmm(v: str) -> str:
    if not _HHMM.match(v):
        raise ValueError(f"{v!r} is not a time of day: write it like 08:30")
    return v


class Timing(Strict):
    """When a recurring procedure runs: on some weekdays at some local times, or every so often.

    `every` is for short cycles (a sweep every 10 minutes, tests); `days` + `at` for the calendar.
    """

    days: list[Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]] = Field(default_factory=lambda: list(DAYS))
    at: list[str] = Field(default_factory=list, description="local times HH:MM")
    every: Duration | None = None

    @field_validator("at")
    @classmethod
    def _times(cls, v: list[str]) -> list[str]:
        return [_hhmm(x) for x in v]

    @model_validator(mode="after")
    def _one_kind(self) -> "Timing":
        if bool(self.at) == bool(self.every):
            raise ValueError("give either 'at' (with optional 'days') or 'every'")
        if self.every is not None and self.every < timedelta(seconds=1):
            raise ValueError("'every' is at least 1s")
        if not self.days:
            raise ValueError("'days' names at least one day")
        return self

    def per_week(self) -> float:
        if self.every is not None:
            return timedelta(days=7) / self.every
        return len(set(self.days)) * len(set(self.at))

    def describe_zh(self) -> str:
        if self.every is not None:
            from definitions.schema.common import duration_zh

            return f"每{duration_zh(self.every)}"
        days = "每天" if len(set(self.days)) == 7 else "每周" + "、".join(DAYS_ZH[d] for d in DAYS if d in self.days)
        return f"{days} {'、'.join(self.at)}"


# ------------------------------------------------------------------ drills 演练


class Sample(Strict):
    """Whom a drill calls: `size` org units drawn at random from a scope, their posts of `positions`."""

    scope: Literal["district", "departments", "towns"]
    positions: list[str] = Field(min_length=1)
    size: int = Field(default=3, ge=1, le=1000)
    org_units: list[str] | None = Field(default=None, description="departments: draw only from these")


class Drill(Strict):
    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    name_zh: str
    name_en: str
    counts_as: Literal["district", "towns"] = Field(description="which weekly minimum of the programme it counts towards")
    schedule: Timing
    sample: Sample
    level: Level = Field(default=Level.orange, description="the level the drill's message pretends, for realism")
    window: Duration = Field(default=timedelta(minutes=30), description="responses within this time count (30 min)")
    policy: Policy
    message_zh: str = Field(description="{name} {code} {link} {window} are filled in; the 【演练】 marker is always added")
    message_en: str = ""
    voice_zh: str = ""
    report_to: list[str] = Field(default_factory=lambda: ["leading_leader", "duty_chief"])
    paused: bool = Field(default=False, description="installed paused (a drill being prepared)")

    @field_validator("name_zh")
    @classmethod
    def _says_drill(cls, v: str) -> str:
        if "演练" not in v:
            raise ValueError("a drill's name says 演练, so it is never mistaken for a real call-out")
        return v


class DrillProgramme(Strict):
    weekly_minimum: dict[Literal["district", "towns"], int] = Field(
        default_factory=lambda: {"district": 2, "towns": 3},
        description="seed 000: at least 2 district drills and 3 town/street spot checks a week")
    programme: list[Drill] = Field(min_length=1)

    @model_validator(mode="after")
    def _enough(self) -> "DrillProgramme":
        ids = [d.id for d in self.programme]
        if len(ids) != len(set(ids)):
            raise ValueError(f"drill ids repeat: {sorted({i for i in ids if ids.count(i) > 1})}")
        for kind, minimum in self.weekly_minimum.items():
            have = sum(d.schedule.per_week() for d in self.programme if d.counts_as == kind and not d.paused)
            if have + 1e-9 < minimum:
                raise ValueError(f"{kind} drills happen {have:g} times a week; the programme asks at least {minimum}")
        return self

    def get(self, drill_id: str) -> Drill | None:
        return next((d for d in self.programme if d.id == drill_id), None)


# ------------------------------------------------------------------ 六问 spot checks


class Question(Strict):
    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    zh: str
    en: str


class FollowUp(Strict):
    """A "no" opens a follow-up for the town: its responsible person must acknowledge, then resolve by the deadline."""

    position: str = Field(default="town_head", description="who in the town is responsible")
    within: Duration = timedelta(hours=24)
    policy: Policy


class SpotCheckSettings(Strict):
    questions: list[Question] = Field(min_length=1, max_length=9, description="keys 1/2 per question on a voice call")
    after_level: Level = Level.orange
    positions: list[str] = Field(default_factory=lambda: ["village_flood_resp"], min_length=1)
    sample_size: int = Field(default=5, ge=1, le=500)
    delay: Duration = Field(default=timedelta(minutes=30), description="after the call-out ends")
    sweep: Timing = Field(description="how often the sweep looks for ended call-outs to check")
    look_back: Duration = Field(default=timedelta(days=2), description="call-outs ended longer ago are not checked")
    policy: Policy = Field(description="calling each sampled person: voice with keypresses, then the SMS form")
    follow_up: FollowUp
    close_after: Duration = Field(default=timedelta(days=7), description="follow-ups still open then are closed unresolved")

    @model_validator(mode="after")
    def _unique(self) -> "SpotCheckSettings":
        ids = [q.id for q in self.questions]
        if len(ids) != len(set(ids)):
            raise ValueError("question ids repeat")
        return self


# ------------------------------------------------------------------ shift handover 交接班


class HandoverSettings(Strict):
    shift_changes: list[str] = Field(min_length=1, description="local times the duty chief changes, HH:MM")
    take_over_within: Duration = timedelta(minutes=30)
    policy: Policy = Field(description="calling the incoming duty chief; escalates to the leading leader")
    close_after: Duration = Field(default=timedelta(hours=12), description="a handover not taken over by then is closed")

    @field_validator("shift_changes")
    @classmethod
    def _times(cls, v: list[str]) -> list[str]:
        return [_hhmm(x) for x in v]

    @model_validator(mode="after")
    def _leader(self) -> "HandoverSettings":
        if not any(s.escalate == "leading_leader" for s in self.policy.steps):
            raise ValueError("policy: escalates to the leading_leader when nobody takes over in time")
        return self


# ------------------------------------------------------------------ contact freshness


class FreshnessSettings(Strict):
    round_starts: str = Field(default="03-20", description="MM-DD: the yearly confirmation round starts")
    start_at: str = "09:00"
    round_by: str = Field(default="04-20", description="MM-DD: confirmations are due before this day (flood season)")
    stale_after: Duration = Field(default=timedelta(days=365), description="a confirmation older than this is stale")
    link_valid: Duration = Field(default=timedelta(days=60))
    failing_window: Duration = Field(default=timedelta(days=90), description="recent failed sends mark a number failing")
    policy: Policy = Field(description="asking each person: an SMS with the link, reminders")
    shard_size: int = Field(default=500, ge=10, le=2000)

    @field_validator("round_starts", "round_by")
    @classmethod
    def _mmdd(cls, v: str) -> str:
        if not _MMDD.match(v):
            raise ValueError(f"{v!r} is not a day of the year: write it like 04-20")
        return v

    @field_validator("start_at")
    @classmethod
    def _time(cls, v: str) -> str:
        return _hhmm(v)

    @model_validator(mode="after")
    def _order(self) -> "FreshnessSettings":
        if self.round_starts >= self.round_by:
            raise ValueError(f"round_starts {self.round_starts} must come before round_by {self.round_by}")
        if any(s.kind == "escalate" for s in self.policy.steps):
            raise ValueError("policy: a confirmation round asks each person; it escalates to nobody")
        return self


# ------------------------------------------------------------------ the monthly readiness check


def _default_readiness_policy() -> Policy:
    return Policy.model_validate({"steps": [
        {"notify": ["voice"]}, {"wait_ack": "10m"}, {"notify": ["voice"]}, {"wait_ack": "10m"},
        {"escalate": "superior", "channels": ["voice", "sms"]}, {"wait_ack": "30m"},
        {"inform": "duty_chief", "channels": ["sms"]}]})


class ReadinessSettings(Strict):
    """每月调度一次各应急救援力量值班值守情况 (seed 003 篇四): each rescue team's 24-hour duty phone called by voice
    (1 = on duty at full strength, 2 = not); a team that does not answer escalated to its leader (`superior`),
    then the duty chief told."""

    day_of_month: int = Field(default=1, ge=1, le=28, description="the day of each month the check runs")
    start_at: str = "09:30"
    policy: Policy = Field(default_factory=_default_readiness_policy,
                           description="calling each team's duty phone; `superior` is the team's leader")

    @field_validator("start_at")
    @classmethod
    def _time(cls, v: str) -> str:
        return _hhmm(v)


# ------------------------------------------------------------------ one file, some sections


class DutyFile(Strict):
    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    name_zh: str = ""
    name_en: str = ""
    drills: DrillProgramme | None = None
    spotcheck: SpotCheckSettings | None = None
    handover: HandoverSettings | None = None
    freshness: FreshnessSettings | None = None
    readiness: ReadinessSettings | None = None

    @model_validator(mode="after")
    def _some(self) -> "DutyFile":
        if not self.sections():
            raise ValueError(f"a duty file holds at least one of {', '.join(SECTIONS)}")
        return self

    def sections(self) -> list[str]:
        return [s for s in (*SECTIONS, *OPTIONAL_SECTIONS) if getattr(self, s) is not None]

    def positions(self) -> set[str]:
        out: set[str] = set()
        policies: list[Policy] = []
        if self.drills:
            for d in self.drills.programme:
                out |= set(d.sample.positions)
                policies.append(d.policy)
        if self.spotcheck:
            out |= set(self.spotcheck.positions) | {self.spotcheck.follow_up.position}
            policies += [self.spotcheck.policy, self.spotcheck.follow_up.policy]
        if self.handover:
            policies.append(self.handover.policy)
        if self.freshness:
            policies.append(self.freshness.policy)
        if self.readiness:
            policies.append(self.readiness.policy)
        for p in policies:
            out |= p.positions()
        return out


class DutySettings(Strict):
    """Every section, merged from the folder (with each section's file version)."""

    drills: DrillProgramme
    spotcheck: SpotCheckSettings
    handover: HandoverSettings
    freshness: FreshnessSettings
    readiness: ReadinessSettings = Field(default_factory=ReadinessSettings)
    versions: dict[str, str] = Field(default_factory=dict)
