"""The escalation interpreter's messages and per-target state: whom it calls (`Target`, `Contact`), what it
sends and records (`Send`, `Record`, `Actions`), what comes back (`Ack`, `Report`, `FlushResult`)."""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, Field, TypeAdapter
from pydantic.dataclasses import dataclass

from workflows.kit.events import FAILED_STATUSES, state_after  # noqa: F401  (defined once, with the event kinds; re-exported)

TERMINAL_STATES = {"acknowledged", "unreachable", "canceled"}


# The per-person state a shard holds for its whole life (Contact, Target, TargetState) is in slotted pydantic
# dataclasses, not BaseModels: a BaseModel instance carries a __dict__ and a set of the fields given, ~1.2 KB for a
# Target, and a worker holds 100,000 of each for hours (issue 25; docs/performance.md "The worker's memory"). So are
# what a round makes for each person at once (Send, Record). Validated and serialised alike (the payloads' JSON is the
# same); copies are `dataclasses.replace`.
@dataclass(slots=True, kw_only=True)
class Contact:
    person_id: str
    name: str = ""
    mobile: str | None = None
    im_id: str | None = None

    def address(self, channel: str) -> str | None:
        return self.im_id if channel == "im" else self.mobile


@dataclass(slots=True, kw_only=True)
class Target:
    """Someone who must answer: a post (position in an org unit) held by a person."""

    key: str
    tier: str = ""
    position: str = ""
    org_unit: str = ""
    label: str = ""
    person: Contact
    deputy: Contact | None = None
    superior: Contact | None = None
    others: dict[str, Contact] = Field(default_factory=dict, description="duty roles and position:<code> recipients")
    policy: str
    priority: int = 100


TARGET = TypeAdapter(Target)
"""A Target's model_validate / model_dump (a dataclass has neither): `TARGET.validate_python(spec)`,
`TARGET.validate_json(text)`, `TARGET.dump_python(target, mode="json")`."""


@dataclass(slots=True, kw_only=True)
class Send:
    """One message to one person (a round makes one for every person at once)."""

    key: str
    target_key: str
    person_id: str
    name: str = ""
    to: str
    channel: str
    purpose: Literal["notify", "escalate", "inform", "cancel", "update", "summary"] = "notify"
    priority: int = 100
    about: str = ""


@dataclass(slots=True, kw_only=True)
class Record:
    """Something that happened, to be written to the audit chain and the read model."""

    kind: str
    step_id: str
    step_global: bool = Field(default=False, description="the step id is the workflow's, not its episode's: the "
                                                          "flush writes it as is (a late answer, one per workflow)")
    target_key: str | None = None
    person_id: str | None = None
    channel: str | None = None
    actor: str = "system"
    at: datetime
    state: str | None = None
    payload: dict[str, Any] = Field(default_factory=dict)


class Actions(BaseModel):
    sends: list[Send] = Field(default_factory=list)
    records: list[Record] = Field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.sends or self.records)

    def extend(self, other: "Actions") -> "Actions":
        self.sends.extend(other.sends)
        self.records.extend(other.records)
        return self


class Ack(BaseModel):
    person_id: str
    channel: str
    at: datetime
    actor: str = ""
    note: str | None = None
    target_keys: list[str] | None = None
    ref: str = Field(default="", description="unique id of the answer (message id, link jti) for idempotency")
    households: int | None = Field(default=None, ge=0, description="到户: a relay confirmation, the households "
                                                                   "reached (workflows/relay.py)")
    reported_by: str | None = Field(default=None, description="who told the duty office (a grid worker 网格员 "
                                                              "phoning in a relay confirmation)")


class Recall(BaseModel):
    """A duty officer calls a target's person again (重新呼叫): once per `ref` (a double click sends once)."""

    target_key: str
    channels: list[str]
    actor: str
    ref: str = Field(min_length=1, description="unique id of the request, for idempotency")
    at: datetime
    note: str | None = None


class RecallResult(BaseModel):
    """What a 重新呼叫 did, answered only once its sends and its record were written (the flush returned):
    `applied` False when the target was settled (acknowledged, canceled) by then and nothing was sent."""

    ref: str
    target_key: str
    applied: bool = True
    channels: list[str] = Field(default_factory=list, description="channels a message was sent on")
    keys: list[str] = Field(default_factory=list, description="the messages' keys (outbox idempotency keys)")
    missing: list[str] = Field(default_factory=list, description="channels asked the person has no address for")
    failed: list[str] = Field(default_factory=list, description="keys the gateway refused at once")


class Report(BaseModel):
    """A gateway's report on one send: delivered, failed, busy, no_answer, machine, declined (keypress 2)…"""

    send_key: str
    status: str
    at: datetime
    detail: str | None = None


class FlushResult(BaseModel):
    """What a flush activity returns: the sends the gateway refused at once, as reports, and when the
    gateway accepted each send that went out (the answer window counts from there)."""

    reports: list[Report] = Field(default_factory=list)
    accepted: dict[str, datetime] = Field(default_factory=dict, description="send key -> gateway acceptance time")


@dataclass(slots=True, kw_only=True)
class TargetState:
    target: Target
    state: str = "pending"
    pc: int = 0
    block_start: int = 0
    repeats: dict[int, int] = Field(default_factory=dict)
    recipients: list[str] = Field(default_factory=list)
    first_notify_done: bool = False
    last_channels: list[str] = Field(default_factory=list)
    waiting_until: datetime | None = None
    wait: timedelta | None = Field(default=None, description="the current wait_ack's length")
    outstanding: list[str] = Field(default_factory=list, description="send keys of the current round")
    sends_total: int = 0
    acknowledged_at: datetime | None = None
    ack_channel: str | None = None
    ack_by: str | None = None
    settled_at: datetime | None = Field(default=None, description="when it was acknowledged, unreachable or canceled")
    looked_up: datetime | None = Field(default=None, description=(
        "the deadline at which the store was asked for an answer not yet heard (`Escalation.due`, `hold`): "
        "once a wait"))


def share_contacts(targets: list[Target]) -> list[Target]:
    """The targets of one workflow name the same superiors and duty roles hundreds of times, each decoded as its own
    object: one object for equal contacts (and equal `others`), kept for the workflow's life. A worker holds every
    shard of a 100,000-person call-out for hours (issue 25). Nothing changes a target's contacts after this."""
    contacts: dict[tuple, Contact] = {}
    others: dict[tuple, dict[str, Contact]] = {}

    def one(c: Contact | None) -> Contact | None:
        return None if c is None else contacts.setdefault((c.person_id, c.name, c.mobile, c.im_id), c)

    for t in targets:
        t.person, t.deputy, t.superior = one(t.person), one(t.deputy), one(t.superior)  # type: ignore[assignment]
        if t.others:
            shared = {k: one(v) for k, v in t.others.items()}
            t.others = others.setdefault(tuple((k, id(v)) for k, v in shared.items()), shared)  # type: ignore[arg-type]
    return targets


def late_step(target_key: str, person_id: str, ref: str) -> str:
    """The step id of a late answer: the same whether the workflow or the store (after it ended) records it,
    so an answer recorded by both is one event."""
    return f"ack.late/{target_key}/{person_id}/{ref}"
