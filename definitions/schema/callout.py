"""Call-out plans 叫应方案: who is called for a warning category, in which tiers, by which policy."""
from __future__ import annotations

from datetime import timedelta
from typing import Literal

from pydantic import Field, model_validator

from definitions.schema.common import Channel, Duration, Level, Strict
from definitions.schema.escalation import Policy, Step

Scope = Literal["district", "departments", "area_towns", "area_villages"]


class Tier(Strict):
    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    name_zh: str
    name_en: str
    scope: Scope = Field(description="district: district-level posts; departments: the listed departments; "
                                     "area_towns / area_villages: towns in the warning area / their villages")
    positions: list[str] = Field(min_length=1)
    org_units: list[str] | None = Field(default=None, description="departments: the department ids to call")
    policy: str
    min_level: Level = Level.orange
    leaders_first: bool = False

    @model_validator(mode="after")
    def _units(self) -> "Tier":
        if self.scope == "departments" and not self.org_units:
            raise ValueError("a departments tier lists its org_units")
        return self


class Relay(Strict):
    """到户到人: after a person of `tier` acknowledges, they are asked to inform the households in the danger
    zones (危险区群众) and confirm it (reply "到户 35"); unconfirmed by the deadline, `escalation` runs (the
    shared interpreter's steps: e.g. the town head, i.e. the person's superior, then the duty chief)."""

    tier: str = Field(description="the tier whose persons relay (e.g. villages)")
    deadline: dict[Level, Duration] = Field(min_length=1, description="after the acknowledgement, by the warning's "
                                            "level; a level not listed takes the nearest listed one below it")
    channels: list[Channel] = Field(default_factory=lambda: [Channel.sms], min_length=1,
                                    description="how the request is sent")
    escalation: list[Step] = Field(min_length=1, description="the steps after the deadline (escalate, wait_ack, inform)")
    request_zh: str = Field(max_length=120, description="the request text (Chinese only); {village} is filled in")
    escalate_zh: str = Field(default="【到户督促】{village}未在时限内回复到户情况,请立即督促通知危险区群众转移避险,"
                                     "完成后回复“到户 户数”", max_length=160,
                             description="to those escalated to; {village} is filled in")
    inform_zh: str = Field(default="【到户告知】{village}到户情况经督促仍未回复,请跟进。", max_length=120)

    def deadline_for(self, level: Level) -> timedelta:
        below = [lv for lv in self.deadline if Level(lv) <= level]
        pick = max(below, key=lambda lv: Level(lv).rank) if below else min(self.deadline, key=lambda lv: Level(lv).rank)
        return self.deadline[pick]

    def policy(self, level: Level) -> Policy:
        """The interpreter's policy of one relay: ask, wait until the deadline, then the escalation."""
        return Policy(steps=[Step(notify=list(self.channels)), Step(wait_ack=self.deadline_for(level)),
                             *self.escalation])

    @model_validator(mode="after")
    def _well_formed(self) -> "Relay":
        for level in self.deadline:
            self.policy(Level(level))  # raises if the escalation leaves no time to answer
        return self


class CalloutPlan(Strict):
    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    name_zh: str
    name_en: str
    category: str
    events: list[str] = Field(default_factory=list, description="keywords of the warning's event (then its headline) that "
                              "select this plan; a keyword belongs to one plan")
    event_codes: list[str] = Field(default_factory=list, description="CAP eventCode values that select this plan before any "
                                   "keyword, as `value` or `valueName:value` (e.g. the GB/T 35965.1 event type code "
                                   "of the office's 12379 feed)")
    default: bool = False
    min_level: Level = Level.orange
    message_zh: str = Field(description="text sent; {level} {event} {headline} {area} {code} {link} are filled in")
    message_en: str = ""
    voice_zh: str = ""
    policies: dict[str, Policy] = Field(min_length=1)
    tiers: list[Tier] = Field(min_length=1)
    summary_to: list[str] = Field(default_factory=lambda: ["leading_leader"])
    cancel_message_zh: str = "【解除】{event}{level}预警已解除,叫应结束。"
    relay: Relay | None = Field(default=None, description="到户到人: a tier's persons confirm they informed the "
                                                           "households in the danger zones")

    @model_validator(mode="after")
    def _refs(self) -> "CalloutPlan":
        ids = [t.id for t in self.tiers]
        if len(ids) != len(set(ids)):
            raise ValueError(f"tier ids repeat: {sorted({i for i in ids if ids.count(i) > 1})}")
        for t in self.tiers:
            if t.policy not in self.policies:
                raise ValueError(f"tier {t.id!r} names policy {t.policy!r}, which is not among policies "
                                 f"({', '.join(self.policies)})")
        if self.relay is not None and self.relay.tier not in ids:
            raise ValueError(f"relay names tier {self.relay.tier!r}, which is not among the tiers ({', '.join(ids)})")
        if not self.default and not self.events:
            raise ValueError("a plan that is not the default lists the events it covers")
        return self

    def tiers_for(self, level: Level) -> list[Tier]:
        return [t for t in self.tiers if level >= t.min_level]

    def positions(self) -> set[str]:
        out = {p for t in self.tiers for p in t.positions}
        for pol in self.policies.values():
            out |= pol.positions()
        if self.relay is not None:
            out |= {t.split(":", 1)[1] for s in self.relay.escalation for t in (s.escalate, s.inform)
                    if t and t.startswith("position:")}
        return out
