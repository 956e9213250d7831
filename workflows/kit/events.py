"""Every audit event kind the system writes, defined once: a constant per kind, grouped per procedure, and
for the kinds store/ reads back a payload model naming the keys the readers use.

Writing: `store.audit.append` refuses a kind that is not registered here (`check`), so a kind emitted
anywhere under a name this module does not know fails at once, in the tests first. Reading accepts any
kind (a database holds events written under older names) and reads payload keys through the models:

    p = ActivationStarted.read(ev.payload)   # a raw, lenient view: p.plan is payload.get("plan")
    ev.payload.get(Sent.k.status)            # the key's name, for the hot loops of a large call-out

so renaming a model's field breaks its readers loudly (AttributeError), and renaming a kind here breaks
the emitters that use the constant and the readers that compare with it.

A new procedure adds a class of constants (`kind("newproc.opened", NewprocOpened)`), a `Payload`
model for each kind store/ reads, and, when it calls people through the escalation interpreter, its
episode prefix to `episodes()` (which registers `<prefix>.sent`, `<prefix>.ack`, … for every record of
`Escalation.RECORDS`).

Pure: imports pydantic and the standard library only (workflows import it inside the sandbox).
"""
from __future__ import annotations

from itertools import product
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

# ------------------------------------------------------------------ payload models


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
    """`report.<deadline kind>.<late|overdue|omitted|reminder>`."""

    deadline: str | None = None
    label: str | None = None
    due_at: str | None = None
    late_by_s: int | None = None
    met_at: str | None = None
    mark: str | None = None


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


# ------------------------------------------------------------------ the registry

KINDS: dict[str, type[Payload] | None] = {}
"""kind -> its payload model (None: store/ reads nothing of its payload)."""


class UnknownEventKind(ValueError):
    """An event kind that workflows/kit/events.py does not define."""


def kind(name: str, payload: type[Payload] | None = None) -> str:
    """Register a kind (once) and return it."""
    if name in KINDS and KINDS[name] is not payload:
        raise ValueError(f"event kind {name!r} registered twice with different payloads")
    KINDS[name] = payload
    return name


def check(name: str) -> str:
    """`name` if registered, else UnknownEventKind: how the audit chain refuses a kind nobody defined."""
    if name not in KINDS:
        raise UnknownEventKind(f"audit event kind {name!r} is not registered in workflows/kit/events.py: define it "
                               "there (a constant of its procedure) and emit the constant")
    return name


def payload_model(name: str) -> type[Payload] | None:
    return KINDS.get(name)


FAILED_STATUSES = frozenset({"failed", "undelivered", "busy", "no_answer", "no_keypress", "machine", "canceled",
                             "opted_out", "no_channel"})
"""A send's statuses that mean it reached nobody (the interpreter stops waiting for it; statistics count it failed)."""


class Escalation:
    """The interpreter's records (workflows/escalation.py), written as `<episode prefix>.<record>`."""

    SENT = "sent"
    ACK = "ack"
    ACK_LATE = "ack.late"
    DELIVERY = "delivery"
    TIMEOUT = "timeout"
    UNREACHABLE = "unreachable"
    WAIT_SKIPPED = "wait_skipped"
    REPEAT = "repeat"
    ESCALATED = "escalated"
    ESCALATION_SKIPPED = "escalation_skipped"
    INFORMED = "informed"
    INFORM_SKIPPED = "inform_skipped"
    CANCELED = "canceled"
    NO_CHANNEL = "no_channel"
    RECORDS = (ACK, ACK_LATE, DELIVERY, TIMEOUT, UNREACHABLE, WAIT_SKIPPED, REPEAT, ESCALATED, ESCALATION_SKIPPED,
               INFORMED, INFORM_SKIPPED, CANCELED, NO_CHANNEL)


GAP = "gap"
"""The last word of the kinds that say nobody (or not everybody) could be called (`activation.gap`, `<episode>.gap`)."""

EPISODE_PREFIXES: list[str] = []
"""Every procedure's escalation episode prefixes (what the episodes' events are written under)."""


def episodes(prefix: str) -> str:
    """Register `<prefix>.sent` and `<prefix>.<record>` for every record of the interpreter; return the prefix."""
    if prefix not in EPISODE_PREFIXES:
        EPISODE_PREFIXES.append(prefix)
    kind(f"{prefix}.{Escalation.SENT}", Sent)
    for record in Escalation.RECORDS:
        kind(f"{prefix}.{record}", Step)
    return prefix


def step(prefix: str, record: str) -> str:
    """The kind an episode's record is written under (checked)."""
    return check(f"{prefix}.{record}")


# ------------------------------------------------------------------ the kinds, per procedure


class Audit:
    ANCHOR = kind("audit.anchor")


class Warnings:
    RECEIVED = kind("warning.received", WarningReceived)
    UPDATE = kind("warning.update", WarningReceived)
    CANCEL = kind("warning.cancel", WarningReceived)
    REFUSED = kind("warning.refused")


class Callout:
    EPISODE = episodes("callout")
    STARTED = kind("callout.started", CalloutStarted)
    PLAN_CHOSEN = kind("callout.plan_chosen", PlanChosen)
    TARGETS_RESOLVED = kind("callout.targets_resolved", TargetsResolved)
    UPDATED = kind("callout.updated", CalloutUpdated)
    CANCEL_REQUESTED = kind("callout.cancel_requested", CancelRequested)
    SUMMARY = kind("callout.summary", CalloutSummary)
    ENDED = kind("callout.ended", CalloutEnded)
    SENT = step(EPISODE, Escalation.SENT)
    ACK = step(EPISODE, Escalation.ACK)
    ACK_LATE = step(EPISODE, Escalation.ACK_LATE)
    DELIVERY = step(EPISODE, Escalation.DELIVERY)
    ESCALATED = step(EPISODE, Escalation.ESCALATED)
    TIMEOUT = step(EPISODE, Escalation.TIMEOUT)
    NEUTRAL: ClassVar[frozenset[str]]  # records that say nothing of who was called (they may name the person)


Callout.NEUTRAL = frozenset(step(Callout.EPISODE, r) for r in (
    Escalation.DELIVERY, Escalation.TIMEOUT, Escalation.UNREACHABLE, Escalation.CANCELED, Escalation.REPEAT,
    Escalation.WAIT_SKIPPED, Escalation.ESCALATION_SKIPPED))


class Gateway:
    OPTED_OUT = kind("gateway.opted_out")


class Answer:
    EPISODE = episodes("answer")  # a late answer whose procedure is not known: `answer.ack.late`
    AMBIGUOUS = kind("answer.ambiguous")
    ASSIGNED = kind("answer.assigned")


class Reporting:
    """The incident reporting chain: `incident.*` and `report.*`."""

    RECEIVED = kind("incident.received", IncidentReceived)
    CONTINUED = kind("incident.continued")
    TRIGGER = kind("incident.trigger", Trigger)
    CLOSED = kind("incident.closed")
    VERBAL_MADE = kind("report.verbal.made", VerbalMade)
    REFUSED = kind("report.refused")
    ESCALATION = episodes("report.escalation")  # an overdue deadline's episode
    RECEIPT = episodes("report.receipt")  # a report's receipts
    CALL = episodes("incident.call")  # a trigger's call
    DEADLINES = ("verbal", "written", "followup", "final")  # (the final report's limit is a follow-up's)
    DEADLINE_VERBS = ("late", "overdue", "omitted", "reminder")
    REPORTS = ("written", "followup", "final")
    REPORT_VERBS = ("drafted", "approved", "returned", "submitted")
    EPISODE_KINDS = ("overdue", "receipts", "trigger")

    @staticmethod
    def deadline(what: str, verb: str) -> str:
        """`report.<verbal|written|followup>.<late|overdue|omitted|reminder>`."""
        return check(f"report.{what}.{verb}")

    @staticmethod
    def report(what: str, verb: str) -> str:
        """`report.<written|followup|final>.<drafted|approved|returned|submitted>`."""
        return check(f"report.{what}.{verb}")

    @staticmethod
    def gap(episode_kind: str) -> str:
        """`report.<overdue|receipts|trigger>.gap`: nobody (or not everybody) to call."""
        return check(f"report.{episode_kind}.gap")


for _what, _verb in product(Reporting.DEADLINES, Reporting.DEADLINE_VERBS):
    kind(f"report.{_what}.{_verb}", DeadlineStep)
for _what, _verb in product(Reporting.REPORTS, Reporting.REPORT_VERBS):
    kind(f"report.{_what}.{_verb}", WrittenReportStep)
for _what in Reporting.EPISODE_KINDS:
    kind(f"report.{_what}.gap")


class Activation:
    """PlanActivationWorkflow, under `activation/<id>` (see store/replay/activation.py for what each carries)."""

    STARTED = kind("activation.started", ActivationStarted)
    CONTINUED = kind("activation.continued")
    GAP = kind("activation.gap")
    HQ_CONVENED = kind("activation.hq.convened", HqConvened)
    LEVEL_CHANGED = kind("activation.level.changed", LevelChanged)
    LEVEL_STOOD_DOWN = kind("activation.level.stood_down")
    TERMINATED = kind("activation.terminated", Terminated)
    TERMINATED_NOTICE = kind("activation.terminated.notice")
    REVIEW_STARTED = kind("activation.review.started", ReviewStartedByActivation)
    REVIEW_ALREADY_STARTED = kind("activation.review.already_started", ReviewStartedByActivation)
    REFUSED = kind("activation.refused")
    ITEM_REMINDER = kind("activation.item.reminder", ItemStep)
    ITEM_RETURNED_NOTICE = kind("activation.item.returned_notice", ItemStep)
    DISPATCH_DRAFTED = kind("activation.dispatch.drafted", DispatchStep)
    DISPATCH_CONSULTED = kind("activation.dispatch.consulted", DispatchStep)
    DISPATCH_APPROVED = kind("activation.dispatch.approved", DispatchStep)
    DISPATCH_RETURNED = kind("activation.dispatch.returned", DispatchStep)
    DISPATCH_CONSULT_REQUESTED = kind("activation.dispatch.consult_requested", DispatchStep)
    DISPATCH_APPROVAL_REQUESTED = kind("activation.dispatch.approval_requested", DispatchStep)
    DISPATCH_SECTOR_INFORMED = kind("activation.dispatch.sector_informed", DispatchStep)
    REINFORCEMENT_REQUESTED = kind("activation.reinforcement.requested", ReinforcementStep)
    REINFORCEMENT_ANSWERED = kind("activation.reinforcement.answered", ReinforcementStep)
    REINFORCEMENT_OVERDUE = kind("activation.reinforcement.overdue", ReinforcementStep)
    CONVENE = episodes("activation.convene")
    NOTICE = episodes("activation.notice")  # a task's or directive's notice: `activation.notice.ack`
    OVERDUE = episodes("activation.overdue")
    ORDERS = episodes("activation.dispatch.order")
    REQUEST = episodes("activation.reinforcement.request")
    CHASE = episodes("activation.reinforcement.chase")
    NOTICE_ACK = step(NOTICE, Escalation.ACK)
    ITEMS = ("task", "directive")
    OPENED = {"task": "opened", "directive": "issued"}  # the verb that opens an item of each kind
    ITEM_VERBS = ("opened", "issued", "feedback", "accepted", "returned", "overdue", "late", "closed")

    @staticmethod
    def item(item_kind: str, verb: str) -> str:
        """`activation.<task|directive>.<verb>`: e.g. `item("task", "overdue")`."""
        return check(f"activation.{item_kind}.{verb}")

    @staticmethod
    def item_opened(item_kind: str) -> str:
        return Activation.item(item_kind, Activation.OPENED[item_kind])


for _what in Activation.ITEMS:
    for _verb in Activation.ITEM_VERBS:
        if _verb in ("opened", "issued") and _verb != Activation.OPENED[_what]:
            continue
        kind(f"activation.{_what}.{_verb}", ItemStep)
KINDS[Activation.NOTICE_ACK] = NoticeAck  # the notice episode's ack: a step that names the item it acknowledges


class Review:
    """PostEventReviewWorkflow, under `review/<incident>`."""

    STARTED = kind("review.started", ReviewStarted)
    SUMMARY_REQUESTED = kind("review.summary.requested", SummaryStep)
    SUMMARY_REMINDER = kind("review.summary.reminder", SummaryStep)
    SUMMARY_SUBMITTED = kind("review.summary.submitted", SummaryStep)
    SUMMARY_LATE = kind("review.summary.late", SummaryStep)
    SUMMARY_OVERDUE = kind("review.summary.overdue", SummaryStep)
    REPORT_COMPILED = kind("review.report.compiled", ReviewReport)
    REPORT_FINAL = kind("review.report.final", ReviewReport)
    REPORT_RETURNED = kind("review.report.returned", ReviewReport)
    REPORT_SIGNED = kind("review.report.signed", ReviewReport)
    SEALED = kind("review.sealed", Sealed)
    CLOSED = kind("review.closed")
    REFUSED = kind("review.refused")
    ESCALATION = episodes("review.escalation")  # an overdue summary's episode
    ESCALATION_GAP = kind("review.escalation.gap")


class SpotCheck:
    SKIPPED = kind("spotcheck.skipped")
    OPENED = kind("spotcheck.opened")
    ANSWERED = kind("spotcheck.answered")
    ANSWERED_LATE = kind("spotcheck.answered.late")
    CLOSED = kind("spotcheck.closed")
    REFUSED = kind("spotcheck.refused")
    FOLLOWUP_OPENED = kind("spotcheck.followup.opened")
    FOLLOWUP_GAP = kind("spotcheck.followup.gap")
    FOLLOWUP_OVERDUE = kind("spotcheck.followup.overdue")
    FOLLOWUP_RESOLVED = kind("spotcheck.followup.resolved")
    FOLLOWUP_UNRESOLVED = kind("spotcheck.followup.unresolved")
    CALL = episodes("spotcheck.call")
    FOLLOWUP = episodes("spotcheck.followup")


class Handover:
    EPISODE = episodes("handover")
    OPENED = kind("handover.opened")
    SKIPPED = kind("handover.skipped")
    NOT_TAKEN_OVER = kind("handover.not_taken_over")
    CLOSED = kind("handover.closed")
    TAKEN_OVER = kind("handover.taken_over")
    LEADER_ACKNOWLEDGED = kind("handover.leader_acknowledged")
    NOTE_EDITED = kind("handover.note_edited")
    HANDED_OVER = kind("handover.handed_over")
    REFUSED = kind("handover.refused")


class Freshness:
    EPISODE = episodes("freshness")
    OPENED = kind("freshness.opened")
    CLOSED = kind("freshness.closed")
    CONFIRMED_LATE = kind("freshness.confirmed_late")
    REFUSED = kind("freshness.refused")


class Drill:
    STARTED = kind("drill.started")
    REPORTED = kind("drill.reported")


class Schedule:
    SYNCED = kind("schedule.synced")
    PAUSED = kind("schedule.paused")
    UNPAUSED = kind("schedule.unpaused")
    TRIGGERED = kind("schedule.triggered")


def refused(procedure_prefix: str) -> str:
    """`<procedure>.refused`: a refused step (store/refusals.py)."""
    return check(f"{procedure_prefix}.refused")
