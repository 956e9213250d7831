"""Escalation policies: the small language every procedure uses to make people answer.

A policy is a list of steps, each a one-key mapping:

    - notify: [sms, im]          send on these channels to everyone now responsible
    - wait_ack: 10m              wait for an acknowledgement (a failed channel ends the wait early)
    - repeat: 1                  run the steps since the last repeat/escalate once more
    - escalate: deputy           add a responsible person: deputy | superior | a duty role | position:<code>
      channels: [voice, sms]     (optional) how to reach them; default: the last notify's channels
    - inform: duty_chief         tell someone, no answer needed (e.g. that a target is unreachable)

When the steps run out without an acknowledgement the target is *unreachable*.
"""
from __future__ import annotations

from pydantic import Field, model_validator

from definitions.schema.common import Channel, Duration, Strict

STEP_KINDS = ("notify", "wait_ack", "repeat", "escalate", "inform")
RELATIVE_RECIPIENTS = ("deputy", "superior")
DUTY_RECIPIENTS = ("leading_leader", "duty_chief", "duty_cadre", "duty_staff")


def recipient_error(value: str) -> str | None:
    if value in RELATIVE_RECIPIENTS or value in DUTY_RECIPIENTS:
        return None
    if value.startswith("position:") and value.split(":", 1)[1]:
        return None
    return (f"unknown recipient {value!r}: use deputy, superior, one of {', '.join(DUTY_RECIPIENTS)}, "
            "or position:<code>")


class Step(Strict):
    notify: list[Channel] | None = Field(default=None, min_length=1)
    wait_ack: Duration | None = None
    repeat: int | None = Field(default=None, ge=1, le=10)
    escalate: str | None = None
    inform: str | None = None
    channels: list[Channel] | None = Field(default=None, min_length=1)

    @model_validator(mode="after")
    def _one_action(self) -> "Step":
        present = [k for k in STEP_KINDS if getattr(self, k) is not None]
        if len(present) != 1:
            raise ValueError(f"a step has exactly one of {', '.join(STEP_KINDS)}; this one has "
                             f"{', '.join(present) or 'none'}")
        if self.channels is not None and present[0] not in ("escalate", "inform"):
            raise ValueError("'channels' goes only with escalate or inform")
        target = self.escalate or self.inform
        if target is not None and (err := recipient_error(target)):
            raise ValueError(err)
        return self

    @property
    def kind(self) -> str:
        return next(k for k in STEP_KINDS if getattr(self, k) is not None)


class Policy(Strict):
    steps: list[Step] = Field(min_length=1)

    @model_validator(mode="after")
    def _well_formed(self) -> "Policy":
        if not any(s.kind == "notify" for s in self.steps):
            raise ValueError("a policy needs at least one notify step")
        if self.steps[0].kind != "notify":
            raise ValueError("a policy starts with a notify step")
        block_has_notify = block_has_wait = False
        unanswered = None  # the last step that asks for an answer with no wait_ack after it yet
        for i, step in enumerate(self.steps):
            if step.kind == "notify":
                block_has_notify, unanswered = True, i
            elif step.kind == "wait_ack":
                block_has_wait, unanswered = True, None
            elif step.kind == "repeat":
                if not block_has_notify:
                    raise ValueError(f"step {i}: repeat has no notify before it to repeat")
                if not block_has_wait:
                    raise ValueError(f"step {i}: repeat has no wait_ack before it: it would send again at once, "
                                     "leaving no time to answer")
                block_has_notify = block_has_wait = False
            elif step.kind == "escalate":
                block_has_notify, block_has_wait, unanswered = True, False, i  # an escalation notifies the new person
        if unanswered is not None:
            raise ValueError(f"step {unanswered}: {self.steps[unanswered].kind} is never followed by a wait_ack: the "
                             "person would have no time to answer before the policy gives up")
        return self

    def positions(self) -> set[str]:
        return {t.split(":", 1)[1] for s in self.steps for t in (s.escalate, s.inform) if t and t.startswith("position:")}
