"""Post-event review templates 复盘/总结评估 (seed 003 篇四 §三(三)3 "及时复盘总结", 篇七 §三(八)).

After a response ends, every participating unit submits a written summary 书面总结
of what worked 经验做法, what fell short 存在的不足 and what to improve 意见建议,
within a deadline (default 7 days), with reminders before it and an escalation
(the shared interpreter) after it. The duty office compiles the preliminary event
report 初步事件报告 from the summaries and the audit trail; the leading leader signs
it off; the case file 一事一档 is sealed.
"""
from __future__ import annotations

from datetime import timedelta

from pydantic import Field, field_validator, model_validator

from definitions.schema.common import Channel, Duration, Strict
from definitions.schema.escalation import DUTY_RECIPIENTS, Policy

ROLES = ("duty_staff", "duty_cadre", "duty_chief", "leading_leader", "commander")


class ReviewRoles(Strict):
    """Which roles may do each step (signatures: admin alone is never enough)."""

    summary: list[str] = Field(default_factory=lambda: ["duty_staff", "duty_cadre", "duty_chief", "leading_leader",
                                                        "commander"],
                               description="submit the written summary of one's own unit (its head, or the head's "
                                           "deputy: who the template's contact_positions name there)")
    on_behalf: list[str] = Field(default_factory=lambda: ["duty_cadre", "duty_chief", "leading_leader"],
                                 description="the duty office: enter any unit's summary on its behalf (recorded as "
                                             "代录, with who entered it); empty: every unit answers for itself")
    compile: list[str] = Field(default_factory=lambda: ["duty_cadre", "duty_chief", "leading_leader"],
                               description="compile the preliminary event report")
    signoff: list[str] = Field(default_factory=lambda: ["leading_leader"], description="sign the report off")

    @field_validator("summary", "compile", "signoff", "on_behalf")
    @classmethod
    def _known(cls, v: list[str], info) -> list[str]:
        for r in v:
            if r not in ROLES:
                raise ValueError(f"unknown role {r!r}: use {', '.join(ROLES)}")
        if not v and info.field_name != "on_behalf":
            raise ValueError("at least one role")
        return v


class ReviewTemplate(Strict):
    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    name_zh: str
    name_en: str
    default: bool = False
    summary_deadline: Duration = Field(default=timedelta(days=7), description="from the request to the summary")
    reminders: list[Duration] = Field(default_factory=lambda: [timedelta(days=2), timedelta(hours=12)],
                                      description="a reminder this long before the deadline (each)")
    channels: list[Channel] = Field(default_factory=lambda: [Channel.sms, Channel.im],
                                    description="how units are asked and reminded")
    contact_positions: list[str] = Field(
        min_length=1, description="who answers for a unit: the first of these positions held in it")
    overdue_policy: str = Field(description="escalation when a unit's summary is overdue")
    policies: dict[str, Policy] = Field(min_length=1)
    roles: ReviewRoles = Field(default_factory=ReviewRoles)
    request_zh: str = Field(
        default="【复盘总结】{title}应急处置已结束。请{unit}于{due}前报送书面总结(经验做法、存在不足、意见建议)。",
        description="the request; {title} {unit} {due} are filled in")
    remind_zh: str = Field(default="【复盘提醒】{title}:{unit}书面总结须于{due}前报送,尚未收到。")
    overdue_zh: str = Field(default="【复盘逾期】{title}:{unit}书面总结已超过时限({due}),请立即报送。")

    @field_validator("reminders")
    @classmethod
    def _reminders(cls, v: list[timedelta]) -> list[timedelta]:
        return sorted(set(v), reverse=True)

    @model_validator(mode="after")
    def _refs(self) -> "ReviewTemplate":
        if self.overdue_policy not in self.policies:
            raise ValueError(f"overdue_policy {self.overdue_policy!r} is not among policies ({', '.join(self.policies)})")
        for r in self.reminders:
            if r >= self.summary_deadline:
                raise ValueError(f"a reminder {r} before the deadline is not after the request "
                                 f"(the deadline is {self.summary_deadline})")
        for name, pol in self.policies.items():
            for step in pol.steps:
                who = step.escalate or step.inform
                if who is not None and who not in ("deputy", "superior", *DUTY_RECIPIENTS) \
                        and not who.startswith("position:"):
                    raise ValueError(f"policy {name!r}: unknown recipient {who!r}")
        for field in ("request_zh", "remind_zh", "overdue_zh"):
            try:
                getattr(self, field).format(title="t", unit="u", due="d")
            except (KeyError, IndexError) as exc:
                raise ValueError(f"{field}: unknown placeholder {exc}; use {{title}}, {{unit}}, {{due}}") from None
        return self

    def positions(self) -> set[str]:
        out = set(self.contact_positions)
        for pol in self.policies.values():
            out |= pol.positions()
        return out
