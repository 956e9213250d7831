"""The payload models of audit events: the keys of each event's payload that store/ reads back
(workflows/kit/events.py registers which kind carries which).

Reading goes through a model, never through a bare string: `Model.read(payload)` is a lenient view
(`view.level` is the raw `payload.get("level")`, or the field's default; a list's or dict's default
reads as None), `Model.k.level` is the key's name for the hot loops. Renaming a field breaks its
readers loudly (AttributeError). Emitters may write more keys than a model names.

Pure: pydantic and the standard library only (workflows import it inside the sandbox).
"""
from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field



class _Keys:
    """A model's payload keys by field name: `Model.k.level == "level"`; an unknown name raises."""

    def __init__(self, model: type[BaseModel]) -> None:
        self._model = model.__name__
        for name, f in model.model_fields.items():
            setattr(self, name, f.alias or name)

    def __getattr__(self, name: str) -> str:  # only called for names that are not fields
        raise AttributeError(f"{self._model} has no payload key {name!r}")


class _View:
    """A payload read through its model: raw values (no coercion), a field's default when the key is absent."""

    __slots__ = ("_payload", "_fields")

    def __init__(self, payload: dict[str, Any], fields: dict[str, tuple[str, Any]]) -> None:
        self._payload, self._fields = payload, fields

    def __getattr__(self, name: str) -> Any:
        try:
            key, default = self._fields[name]
        except KeyError:
            raise AttributeError(f"no payload field {name!r}") from None
        return self._payload.get(key, default)


class Payload(BaseModel):
    """The keys of an event's payload that store/ reads (emitters may write more: extra keys are allowed)."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)
    k: ClassVar[_Keys]
    _read_fields: ClassVar[dict[str, tuple[str, Any]]]

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        cls.k = _Keys(cls)
        cls._read_fields = {name: (f.alias or name, None if f.default_factory is not None or f.is_required() else f.default)
                            for name, f in cls.model_fields.items()}  # (a list's or dict's default reads as None)

    @classmethod
    def read(cls, payload: dict[str, Any]) -> Any:
        """A lenient view of a stored payload (any age): `view.<field>` is the raw value or the field's default."""
        return _View(payload, cls._read_fields)


# the escalation interpreter's events (every procedure that calls people)


class Sent(Payload):
    """`<prefix>.sent`: one send to one person for one target."""

    episode: str | None = None
    target: str | None = None  # the target's key ({tier}/{post} in a call-out)
    person_id: str | None = None
    purpose: str | None = None  # notify | escalate | inform | cancel | update | summary
    status: str | None = None  # the gateway's first word (FAILED_STATUSES: failed at once)


class Step(Payload):
    """`<prefix>.<record>`: one step of the interpreter on one target, with the target's state after it."""

    episode: str | None = None
    target: str | None = None
    person_id: str | None = None
    state: str | None = None
    send: str | None = None  # .delivery: the send's key
    status: str | None = None  # .delivery: the gateway's later word
    note: str | None = None  # .ack
    late: bool | None = None  # .ack: answered after the target was given up


# call-out


class CalloutStarted(Payload):
    level: str | None = None


class PlanChosen(Payload):
    plan: str | None = None
    version: str | None = None
    category: str | None = None
    tiers: list[str] = Field(default_factory=list)


class TargetsResolved(Payload):
    per_tier: dict[str, int] = Field(default_factory=dict)
    tiers: list[str] = Field(default_factory=list)


class CalloutUpdated(Payload):
    from_level: str | None = None
    to_level: str | None = None


class CancelRequested(Payload):
    reason: str | None = None


class CalloutSummary(Payload):
    acknowledged: int | None = None
    total: int | None = None


class CalloutEnded(Payload):
    status: str | None = None


# warnings


class WarningReceived(Payload):
    warning_id: str | None = None
    identifier: str | None = None
    headline: str | None = None
    event: str | None = None
    level: str | None = None
    age_s: int | None = None  # seconds from the warning's sent time to its intake (api/services/staleness.py)
    age: dict[str, Any] = Field(default_factory=dict)  # sent, expires (ISO), age_s, old, expired
    accepted_stale: bool = False  # an old or expired warning called out on an explicit confirmation


# reporting chain


class IncidentReceived(Payload):
    incident_id: str | None = None
    title: str | None = None
    source: str | None = None
    category: str | None = None
    subtype: str | None = None
    place: str | None = None
    town_id: str | None = None
    severity: str | None = None
    rules: str | None = None
    rules_version: str | None = None
    deadlines: dict[str, str] = Field(default_factory=dict)  # deadline key -> due (ISO)
    related: list[str] = Field(default_factory=list)  # the call-outs the incident follows from


class VerbalMade(Payload):
    to_whom: str | None = None
    by_whom: str | None = None
    on_time: bool = True


class WrittenReportStep(Payload):
    """`report.<written|followup|final>.<drafted|approved|returned|submitted>`."""

    seq: int | None = None
    label: str | None = None
    version: int | None = None
    severity: str | None = None  # .approved
    approved_by: str | None = None  # .submitted
    on_time: bool | None = None  # .submitted


class DeadlineStep(Payload):
    """`report.<deadline kind>.<late|overdue|omitted|lapsed|reminder>`."""

    deadline: str | None = None
    label: str | None = None
    due_at: str | None = None
    late_by_s: int | None = None
    met_at: str | None = None
    mark: str | None = None


class ChainSettled(Payload):
    """`report.settled`: the chain settled by the end of the response or the review (what was still open)."""

    by: str | None = None  # the audit subject that settled it: activation/<id> | review/<incident>
    reason: str | None = None
    omitted: list[str] = Field(default_factory=list)  # deadline keys marked 漏报
    lapsed: list[str] = Field(default_factory=list)  # deadline keys closed 未报(已终止): not due, no longer owed
    late: list[str] = Field(default_factory=list)  # deadline keys met late (迟报, unchanged)
    ended: bool = True  # False: a response terminated; the chain goes on for its final report 终报
    open: list[str] = Field(default_factory=list)  # deadline keys still owed (the final report's)


class Trigger(Payload):
    trigger: str | None = None
    name: str | None = None


# plan activation


class ActivationStarted(Payload):
    plan: str | None = None
    plan_name: str | None = None
    plan_version: str | None = None
    level: str | None = None
    level_name: str | None = None
    commander: str | None = None
    reason: str | None = None


class HqConvened(Payload):
    level: str | None = None
    seats: dict[str, list[str]] = Field(default_factory=dict)  # post key -> roles
    groups: list[Any] = Field(default_factory=list)


class LevelChanged(Payload):
    from_: str | None = Field(default=None, alias="from")
    to: str | None = None
    direction: str | None = None  # up | down
    reason: str | None = None


class Terminated(Payload):
    reason: str | None = None


class ReviewStartedByActivation(Payload):
    workflow_id: str | None = None


class ItemStep(Payload):
    """`activation.<task|directive>.<verb>` and the item's notices (`activation.item.reminder`)."""

    item: str | None = None
    title: str | None = None
    group: str | None = None
    unit: str | None = None
    assignee: str | None = None
    due_at: str | None = None
    feedback_required: bool = True
    kind: str | None = None  # .feedback: progress | blocked | done
    after_due: bool | None = None  # .feedback
    comments: str | None = None  # .returned
    mark: str | None = None  # .late
    reason: str | None = None  # .closed


class NoticeAck(Step):
    """`activation.notice.ack`: its target is the item; `item` names it when nobody could be called."""

    item: str | None = None


class DispatchStep(Payload):
    seq: int | None = None
    consult_required: bool | None = None
    forces: list[Any] = Field(default_factory=list)
    task: str | None = None
    version: int | None = None
    agree: bool | None = None


class ReinforcementStep(Payload):
    seq: int | None = None
    kind: str | None = None
    detail: str | None = None
    due_at: str | None = None
    decision: str | None = None
    late_by_s: int | None = None
    to: str | None = None


# post-event review


class ReviewStarted(Payload):
    units: list[dict[str, Any]] = Field(default_factory=list)  # {"id", "name"}
    due_at: str | None = None
    template: str | None = None
    template_version: str | None = None


class SummaryStep(Payload):
    """`review.summary.<requested|reminder|submitted|late|overdue>`."""

    unit_id: str | None = None
    unit: str | None = None
    due_at: str | None = None
    version: int | None = None
    first: bool = True
    late_by_s: int | None = None
    mark: str | None = None


class ReviewReport(Payload):
    """`review.report.<compiled|final|returned|signed>`."""

    version: int | None = None
    sha256_json: str | None = None
    comments: str | None = None


class Sealed(Payload):
    sha256: str | None = None
    filename: str | None = None
