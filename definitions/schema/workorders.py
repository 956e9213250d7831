"""Hotline work orders 12345/110 工单 (seed 003 篇六: 12345 与 110 联动, 闭环, 跟踪督办; seed 000 任务18).

A work order comes from a hotline (12345, or 110/119/120/12122 passing on what they learn first). The duty
office assigns it to a department or a town (分拨; these rules propose one by category and town); the unit's
responsible person signs for it (签收) within a time limit, is called through the shared escalation
interpreter when nobody signs (deputy, superior, duty chief), may return it with a reason (退回), gives
feedback (办理反馈) and reports it done (办结) within limits that depend on the category and the urgency;
the duty office checks and closes it or sends it back; the result goes back to the hotline platform (回访).
Some categories are copied to fire rescue (抄报消防救援).
"""
from __future__ import annotations

from datetime import timedelta

from pydantic import Field, field_validator, model_validator

from definitions.schema.common import Duration, Strict
from definitions.schema.escalation import DUTY_RECIPIENTS, Policy

SOURCES = ("12345", "110", "119", "120", "12122")
URGENCIES = ("normal", "urgent")
URGENCY_ZH = {"normal": "一般", "urgent": "紧急"}
DUTY_ROLES = ("duty_staff", "duty_cadre", "duty_chief", "leading_leader")
ROLES = (*DUTY_ROLES, "commander")
INCIDENT_CATEGORIES = ("natural_disaster", "accident", "public_health", "social_security")


class Limits(Strict):
    """The time limits of one assignment, from the moment it is assigned."""

    sign: Duration = Field(description="签收: the unit's responsible person signs for it")
    feedback: Duration = Field(description="办理反馈: the first feedback")
    complete: Duration | None = Field(default=None, description="办结, in hours or days of the clock")
    complete_working_days: int | None = Field(default=None, ge=1, le=60,
                                              description="办结, in working days (Monday to Friday, the duty office's "
                                                          "local time; public holidays are not known here)")

    @model_validator(mode="after")
    def _one_complete(self) -> "Limits":
        if (self.complete is None) == (self.complete_working_days is None):
            raise ValueError("give exactly one of complete (a duration) or complete_working_days")
        if self.feedback < self.sign:
            raise ValueError(f"feedback ({self.feedback}) comes before sign ({self.sign}): feedback follows signing")
        return self


class Deadlines(Strict):
    normal: Limits
    urgent: Limits


class Category(Strict):
    name_en: str = ""
    unit: str | None = Field(default=None, description="the department proposed (directory id), when no town is "
                                                       "proposed or the category is not a town's")
    town_first: bool = Field(default=False, description="propose the order's town (when it names one) before `unit`")
    deadlines: Deadlines | None = Field(default=None, description="the category's own limits; default: the rules'")
    fire_copy: bool = Field(default=False, description="抄报消防救援: fire rescue is told when it is assigned")
    incident_category: str = Field(default="accident", description="the incident's category when it becomes one")
    incident_subtype: str = ""

    @field_validator("incident_category")
    @classmethod
    def _incident_category(cls, v: str) -> str:
        if v not in INCIDENT_CATEGORIES:
            raise ValueError(f"unknown incident category {v!r}: use {', '.join(INCIDENT_CATEGORIES)}")
        return v


class FireCopy(Strict):
    """抄报消防救援: who is told, and for which orders besides the categories marked fire_copy."""

    unit: str = Field(description="the fire rescue unit (directory id)")
    sources: list[str] = Field(default_factory=list, description="orders from these hotlines are always copied")
    urgent: bool = Field(default=False, description="every urgent order is copied")

    @field_validator("sources")
    @classmethod
    def _sources(cls, v: list[str]) -> list[str]:
        for s in v:
            if s not in SOURCES:
                raise ValueError(f"unknown source {s!r}: use {', '.join(SOURCES)}")
        return v


class WorkOrderRoles(Strict):
    """Which roles may do each step. Signing, returning, feedback and completion also need the caller to be a
    person of the unit the order is assigned to (its responsible person, the deputy, or a person of the unit)."""

    assign: list[str] = Field(default_factory=lambda: list(DUTY_ROLES), description="分拨 and 改派: the duty office")
    unit: list[str] = Field(default_factory=lambda: list(ROLES), description="签收, 退回, 反馈, 办结 (the unit's persons)")
    on_behalf: list[str] = Field(default_factory=lambda: ["duty_cadre", "duty_chief", "leading_leader"],
                                 description="the duty office records a unit's step on its behalf (代录)")
    close: list[str] = Field(default_factory=lambda: ["duty_cadre", "duty_chief", "leading_leader"],
                             description="审核办结 or 退回重办: the duty office")
    incident: list[str] = Field(default_factory=lambda: list(DUTY_ROLES), description="转为突发事件")

    @field_validator("assign", "unit", "on_behalf", "close", "incident")
    @classmethod
    def _known(cls, v: list[str]) -> list[str]:
        for r in v:
            if r not in ROLES:
                raise ValueError(f"unknown role {r!r}: use {', '.join(ROLES)}")
        return v


class WorkOrderRules(Strict):
    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    name_zh: str
    name_en: str = ""
    default: bool = False
    utc_offset_hours: int = Field(default=8, ge=-12, le=14, description="the duty office's local time (working days)")
    categories: dict[str, Category] = Field(min_length=1, description="category (Chinese, as the hotline names it)")
    deadlines: Deadlines
    contact_positions: list[str] = Field(min_length=1, description="who answers for a unit: the first of these held")
    sign_policy: str = Field(description="whom to call until someone signs")
    overdue_policy: str = Field(description="督办: an overdue feedback or completion")
    policies: dict[str, Policy] = Field(min_length=1)
    fire_copy: FireCopy | None = None
    visit_wait: Duration = Field(default=timedelta(days=7), description="回访: how long the satisfaction answer is "
                                                                       "waited for after the result was posted")
    roles: WorkOrderRoles = Field(default_factory=WorkOrderRoles)

    @model_validator(mode="after")
    def _refs(self) -> "WorkOrderRules":
        for field in ("sign_policy", "overdue_policy"):
            if getattr(self, field) not in self.policies:
                raise ValueError(f"{field} {getattr(self, field)!r} is not among policies ({', '.join(self.policies)})")
        for name, pol in self.policies.items():
            for step in pol.steps:
                who = step.escalate or step.inform
                if who is not None and who not in ("deputy", "superior", *DUTY_RECIPIENTS) \
                        and not who.startswith("position:"):
                    raise ValueError(f"policy {name!r}: unknown recipient {who!r}")
        return self

    def limits(self, category: str, urgency: str) -> Limits:
        c = self.categories.get(category)
        d = c.deadlines if c is not None and c.deadlines is not None else self.deadlines
        return d.urgent if urgency == "urgent" else d.normal

    def propose(self, category: str, town_id: str | None) -> str | None:
        """The unit the rules propose for an order of `category` in `town_id` (directory id), if any."""
        c = self.categories.get(category)
        if c is None:
            return town_id
        if c.town_first and town_id:
            return town_id
        return c.unit or town_id

    def copies_fire(self, category: str, source: str, urgency: str) -> bool:
        if self.fire_copy is None:
            return False
        c = self.categories.get(category)
        return bool((c is not None and c.fire_copy) or source in self.fire_copy.sources
                    or (self.fire_copy.urgent and urgency == "urgent"))

    def positions(self) -> set[str]:
        out = set(self.contact_positions)
        for pol in self.policies.values():
            out |= pol.positions()
        return out
