"""Call-out plans 叫应方案: who is called for a warning category, in which tiers, by which policy."""
from __future__ import annotations

from datetime import timedelta
from typing import Literal

from pydantic import Field, model_validator

from definitions.schema.common import Channel, Duration, Level, Strict
from definitions.schema.escalation import Policy, Step

Scope = Literal["district", "departments", "area_towns", "area_villages"]


class Reach(Strict):
    """Who a tier reaches: posts in a scope (shared by call-out tiers and publication tiers)."""

    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    name_zh: str
    name_en: str
    scope: Scope = Field(description="district: district-level posts; departments: the listed departments; "
                                     "area_towns / area_villages: towns in the warning area / their villages")
    positions: list[str] = Field(min_length=1)
    org_units: list[str] | None = Field(default=None, description="departments: the department ids to call")

    @model_validator(mode="after")
    def _units(self) -> "Reach":
        if self.scope == "departments" and not self.org_units:
            raise ValueError("a departments tier lists its org_units")
        return self


class Tier(Reach):
    policy: str
    min_level: Level = Level.orange
    leaders_first: bool = False


class PublishLevel(Strict):
    """Who is informed of a warning of one level below the call-out's, and by which channels."""

    tiers: list[Reach] = Field(min_length=1)
    channels: list[Channel] = Field(default_factory=lambda: [Channel.sms, Channel.im], min_length=1,
                                    description="each person gets one message per channel they have (no voice by default)")

    @model_validator(mode="after")
    def _ids(self) -> "PublishLevel":
        ids = [t.id for t in self.tiers]
        if len(ids) != len(set(ids)):
            raise ValueError(f"tier ids repeat: {sorted({i for i in ids if ids.count(i) > 1})}")
        return self


BROADCAST_FIELDS = {"level": "橙色", "event": "暴雨", "headline": "", "area": "全区"}


class Broadcast(Strict):
    """应急广播: which levels of this plan's warnings are also played on the IP broadcast terminals of the warning's
    towns (seed 000 任务 3), with what words (short: loudspeakers, TTS) and how many times."""

    levels: list[Level] = Field(min_length=1, description="the warning levels that are broadcast")
    text_zh: str = Field(min_length=1, max_length=300, description="played text; {level} {event} {headline} {area}")
    cancel_text_zh: str = Field(default="各位居民请注意:{event}{level}预警已解除。", min_length=1, max_length=300,
                                description="played when the warning is cancelled (解除), to the towns that heard it")
    repeat: int = Field(default=2, ge=1, le=10, description="times each terminal plays the text")

    @model_validator(mode="after")
    def _templates(self) -> "Broadcast":
        for name in ("text_zh", "cancel_text_zh"):
            try:
                getattr(self, name).format(**BROADCAST_FIELDS)
            except KeyError as exc:
                raise ValueError(f"{name}: {{{exc.args[0]}}} is not a field; use {{level}} {{event}} {{headline}} "
                                 "{area}") from None
            except (IndexError, ValueError) as exc:
                raise ValueError(f"{name}: not a template ({exc}); use {{level}} {{event}} {{headline}} {{area}}"
                                 ) from None
        return self

    def covers(self, level: Level) -> bool:
        return level in self.levels


PUBLISH_FIELDS = ("level", "event", "headline", "area")


class Publish(Strict):
    """精准发布 (seed 000 任务 13-14): a warning below the plan's call-out level is published to the grassroots
    persons responsible, once each, without asking for an answer (no 叫应, no escalation)."""

    blue: PublishLevel | None = None
    yellow: PublishLevel | None = None
    message_zh: str = Field(description="text sent; {level} {event} {headline} {area} are filled in")
    update_message_zh: str = "【更新】{event}{level}预警:{headline} 范围:{area}。"
    cancel_message_zh: str = "【解除】{event}{level}预警已解除。"
    wait: Duration = Field(default=timedelta(minutes=30), description="how long delivery reports are awaited before the summary")

    @model_validator(mode="after")
    def _templates(self) -> "Publish":
        if self.blue is None and self.yellow is None:
            raise ValueError("a publish section names blue, yellow or both")
        for name in ("message_zh", "update_message_zh", "cancel_message_zh"):
            try:
                getattr(self, name).format(**{k: "" for k in PUBLISH_FIELDS})
            except (KeyError, IndexError, ValueError) as exc:
                raise ValueError(f"{name}: a placeholder other than {{level}} {{event}} {{headline}} {{area}} "
                                 f"or a stray brace ({exc})") from None
        return self

    def for_level(self, level: Level) -> PublishLevel | None:
        return {Level.blue: self.blue, Level.yellow: self.yellow}.get(level)


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
    broadcast: Broadcast | None = Field(default=None, description="应急广播 for some levels; none: never broadcast")
    publish: Publish | None = Field(default=None, description="below min_level: who is informed (精准发布), no answer asked")
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
        if self.publish is not None:
            for lvl in (Level.blue, Level.yellow):
                if self.publish.for_level(lvl) is not None and lvl >= self.min_level:
                    raise ValueError(f"publish.{lvl.value}: {lvl.value} is at or above the plan's min_level "
                                     f"{self.min_level.value}, where the call-out runs")
        return self

    def publish_for(self, level: Level | None) -> PublishLevel | None:
        """What the plan publishes for a warning of this level (None: nothing)."""
        if self.publish is None or level is None or level >= self.min_level:
            return None
        return self.publish.for_level(level)

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

    def publish_positions(self) -> set[str]:
        levels = [self.publish.blue, self.publish.yellow] if self.publish else []
        return {p for lv in levels if lv for t in lv.tiers for p in t.positions}
