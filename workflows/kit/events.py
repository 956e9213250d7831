"""Every audit event kind the system writes, defined once: a constant per kind, grouped per procedure, and
for the kinds store/ reads back a payload model naming the keys the readers use (the models live in
workflows/kit/payloads.py and are re-exported here).

Writing: `store.audit.append` refuses a kind that is not registered here (`check`), so a kind emitted
anywhere under a name this module does not know fails at once, in the tests first. Reading accepts any
kind (a database holds events written under older names) and reads payload keys through the models:

    p = ActivationStarted.read(ev.payload)   # a raw, lenient view: p.plan is payload.get("plan")
    ev.payload.get(Sent.k.status)            # the key's name, for the hot loops of a large call-out

so renaming a model's field breaks its readers loudly (AttributeError), and renaming a kind here breaks
the emitters that use the constant and the readers that compare with it.

A new procedure adds a class of constants (`kind("newproc.opened", NewprocOpened)`), a `Payload`
model (payloads.py) for each kind store/ reads, and, when it calls people through the escalation interpreter, its
episode prefix to `episodes()` (which registers `<prefix>.sent`, `<prefix>.ack`, … for every record of
`Escalation.RECORDS`).

Pure: imports pydantic and the standard library only (workflows import it inside the sandbox).
"""
from __future__ import annotations

from itertools import product
from typing import ClassVar

from workflows.kit.payloads import (  # noqa: F401  (re-exported: readers import the models from here)
    ActivationStarted,
    CalloutEnded,
    CalloutStarted,
    CalloutSummary,
    CalloutUpdated,
    CancelRequested,
    ChainSettled,
    DeadlineStep,
    DispatchStep,
    HqConvened,
    IncidentReceived,
    ItemStep,
    LevelChanged,
    NoticeAck,
    Payload,
    PlanChosen,
    ReinforcementStep,
    ReviewReport,
    ReviewStarted,
    ReviewStartedByActivation,
    Sealed,
    Sent,
    Step,
    SummaryStep,
    TargetsResolved,
    Terminated,
    Trigger,
    VerbalMade,
    WarningReceived,
    WrittenReportStep,
)


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


def state_after(current: str | None, recorded: str | None) -> str | None:
    """A target's state in a read model or a replay once a record written after `current` is applied.
    "acknowledged" is final in the interpreter, so a record of another state that comes after it was decided
    before the answer and written behind it (`drive()` records answers while a batch of sends is still
    going out): the target stays acknowledged."""
    return current if not recorded or current == "acknowledged" else recorded


BOUNCE_STATUSES = frozenset({"failed", "undelivered", "opted_out"})
"""A send's statuses that say the number itself is failing (contact freshness: a bounced number), unlike a busy
line or an unanswered call."""


class Escalation:
    """The interpreter's records (workflows/escalation/), written as `<episode prefix>.<record>`."""

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
    RECALL = "recall"  # a duty officer called the person again (重新呼叫)
    RECORDS = (ACK, ACK_LATE, DELIVERY, TIMEOUT, UNREACHABLE, WAIT_SKIPPED, REPEAT, ESCALATED, ESCALATION_SKIPPED,
               INFORMED, INFORM_SKIPPED, CANCELED, NO_CHANNEL, RECALL)


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
    # a subject's chain records the head of one of its shard chains (store/audit.py `seal_shards`)
    CHAIN_SEALED = kind("audit.chain.sealed")


class Access:
    """Who may use the system: API tokens created, their role changed, revoked (api/services/users.py), under
    the subject `access`."""

    SUBJECT = "access"
    TOKEN_CREATED = kind("access.token.created")
    TOKEN_ROLE_CHANGED = kind("access.token.role_changed")
    TOKEN_REVOKED = kind("access.token.revoked")


class Warnings:
    RECEIVED = kind("warning.received", WarningReceived)
    UPDATE = kind("warning.update", WarningReceived)
    CANCEL = kind("warning.cancel", WarningReceived)
    ACK = kind("warning.ack")  # (a CAP Ack or Error is recorded like any message: api/services/warnings.py)
    ERROR = kind("warning.error")
    REFUSED = kind("warning.refused")

    @staticmethod
    def of_message(msg_type: str) -> str:
        """The kind a CAP message of this type (Alert, Update, Cancel, Ack, Error) is recorded under."""
        return Warnings.RECEIVED if msg_type == "Alert" else check(f"warning.{msg_type.lower()}")


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


class Publication:
    """PublicationWorkflow (精准发布 below orange), under `publication-<warning id>`: no answer asked."""

    STARTED = kind("publication.started")
    RESOLVED = kind("publication.recipients_resolved")
    SENT = kind("publication.sent")
    DELIVERY = kind("publication.delivery")
    SUPERSEDED = kind("publication.superseded")
    SUMMARY = kind("publication.summary")
    ENDED = kind("publication.ended")


class Relay:
    """到户到人 (workflows/relay.py), under the call-out's subject: the relay episode's records
    (`relay.<record>`: `relay.escalated`, `relay.timeout`, …), and what the relay itself says."""

    EPISODE = episodes("relay")
    RECORDS = ("requested", "confirmed", "late")  # the relay's own records beside the interpreter's (`relay.<record>`)
    REQUESTED = kind("relay.requested")  # a village person acknowledged: asked to inform the households
    CONFIRMED = kind("relay.confirmed")  # households, by whom, on behalf of whom, in time
    LATE = kind("relay.late")  # a confirmation after the deadline (or after the relay was settled): recorded
    ESCALATED = step(EPISODE, Escalation.ESCALATED)
    UNREACHABLE = step(EPISODE, Escalation.UNREACHABLE)
    CANCELED = step(EPISODE, Escalation.CANCELED)


class Gateway:
    OPTED_OUT = kind("gateway.opted_out")


class Broadcast:
    """应急广播 over the IP broadcast platform (store/broadcasts.py), on the subject that asked for it."""

    REQUESTED = kind("broadcast.requested")
    ACCEPTED = kind("broadcast.accepted")
    PLAYED = kind("broadcast.played")  # one terminal (or area) played it
    FAILED = kind("broadcast.failed")  # one terminal failed, or the platform never accepted the request


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
    SETTLED = kind("report.settled", ChainSettled)  # the response ended or the review was signed: open limits settled
    VERBAL_MADE = kind("report.verbal.made", VerbalMade)
    UNIT_LATE = kind("report.unit.late", DeadlineStep)  # the reporting unit (town, department) reported late: 迟报
    CITY_SENT = kind("report.city.sent")  # 上报: a report version taken by the city line (activities/upward.py)
    CITY_RECEIPT = kind("report.city.receipt")  # the city (province) duty office signed for it (签收)
    VERTICAL_MADE = kind("report.vertical.made")  # 拉条: the department's report to its city department, recorded
    VERTICAL_GAP = kind("report.vertical.gap", DeadlineStep)  # …the district got it later than the rules allow
    CITY_FAILED = kind("report.city.failed")  # neither the city line nor the SMS fallback took it: phone them
    CITY_FALLBACK = kind("report.city.fallback")  # the city line was down after its retries: sent by SMS instead
    REFUSED = kind("report.refused")
    ESCALATION = episodes("report.escalation")  # an overdue deadline's episode
    RECEIPT = episodes("report.receipt")  # a report's receipts
    CALL = episodes("incident.call")  # a trigger's call
    DEADLINES = ("verbal", "written", "followup", "final")  # (the final report's limit is a follow-up's)
    DEADLINE_VERBS = ("late", "overdue", "omitted", "lapsed", "reminder")  # lapsed: settled before it was due
    REPORTS = ("written", "followup", "final")
    REPORT_VERBS = ("drafted", "approved", "returned", "submitted")
    EPISODE_KINDS = ("overdue", "receipts", "trigger")

    @staticmethod
    def deadline(what: str, verb: str) -> str:
        """`report.<verbal|written|followup>.<late|overdue|omitted|lapsed|reminder>`."""
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
    TEAM_BUSY = kind("activation.dispatch.team_busy")  # a register team marked busy for a dispatch plan
    TEAM_RELEASED = kind("activation.dispatch.team_released")  # and available again (returned plan, termination)
    REINFORCEMENT_REQUESTED = kind("activation.reinforcement.requested", ReinforcementStep)
    REINFORCEMENT_ANSWERED = kind("activation.reinforcement.answered", ReinforcementStep)
    REINFORCEMENT_OVERDUE = kind("activation.reinforcement.overdue", ReinforcementStep)
    CONVENE = episodes("activation.convene")
    NOTICE = episodes("activation.notice")  # a task's or directive's notice: `activation.notice.ack`
    OVERDUE = episodes("activation.overdue")
    ORDERS = episodes("activation.dispatch.order")
    REQUEST = episodes("activation.reinforcement.request")
    CHASE = episodes("activation.reinforcement.chase")
    EXPERTS = episodes("activation.experts")  # 会商研判: the experts called (`activation.experts.ack`: confirmed)
    MEETING_CONVENED = kind("activation.meeting.convened")
    MEETING_GAP = kind("activation.meeting.gap")  # no expert of a field needed in the register
    MEETING_CONCLUDED = kind("activation.meeting.concluded")
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


class Supplies:
    """物资调拨 under the activation's subject `activation/<id>` (api/services/supplies.py): no workflow, each step
    one transaction with the stock."""

    REQUESTED = kind("activation.supplies.requested")
    SHORTAGE = kind("activation.supplies.shortage")  # above the depot's stock: the city reinforcement proposed
    APPROVED = kind("activation.supplies.approved")
    REFUSED = kind("activation.supplies.refused")
    PICKED_UP = kind("activation.supplies.picked_up")
    RECEIVED = kind("activation.supplies.received")


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


class WorkOrder:
    """WorkOrderWorkflow, under its workflow id `workorder-<source>-<ticket>` (and one event under a linked incident)."""

    RECEIVED = kind("workorder.received")
    CONTINUED = kind("workorder.continued")
    ASSIGNED = kind("workorder.assigned")
    GAP = kind("workorder.gap")
    SIGNED = kind("workorder.signed")
    RETURNED = kind("workorder.returned")
    FEEDBACK = kind("workorder.feedback")
    COMPLETED = kind("workorder.completed")
    SENT_BACK = kind("workorder.sent_back")
    CLOSED = kind("workorder.closed")
    FIRE_COPIED = kind("workorder.fire_copied")
    VISIT_POSTED = kind("workorder.visit.posted")
    VISIT_ANSWERED = kind("workorder.visit.answered")
    VISIT_UNANSWERED = kind("workorder.visit.unanswered")
    INCIDENT_LINKED = kind("workorder.incident_linked")
    INCIDENT_FROM = kind("incident.from_workorder")  # under the incident's subject: the order it came from
    ENDED = kind("workorder.ended")
    REFUSED = kind("workorder.refused")
    # (not `workorder.sign`: its records would share a prefix with the limits' kinds, workorder.sign.late)
    SIGN = episodes("workorder.call")  # the signing call (签收)
    OVERDUE = episodes("workorder.chase")  # 督办 of an overdue feedback or completion
    STEPS = ("sign", "feedback", "complete")

    @staticmethod
    def step(key: str, what: str) -> str:
        """`workorder.<sign|feedback|complete>.<overdue|late>`"""
        return check(f"workorder.{key}.{what}")


for _key, _what in product(WorkOrder.STEPS, ("overdue", "late")):
    kind(f"workorder.{_key}.{_what}")


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


class Proposal:
    """ResponseProposalWorkflow (预警和响应一体化), under `proposal/<warning id>-<plan id>`: a warning that is a
    plan's start condition proposes the level to the leading leader (`proposal.sent`: each message, the
    interpreter's episode; `proposal.escalated` when the district head is called)."""

    EPISODE = episodes("proposal")
    MADE = kind("proposal.made")
    SENT = step(EPISODE, Escalation.SENT)
    ESCALATED = step(EPISODE, Escalation.ESCALATED)
    ACCEPTED = kind("proposal.accepted")
    DECLINED = kind("proposal.declined")
    EXPIRED = kind("proposal.expired")
    RAISED = kind("proposal.raised")  # the warning's update meets a higher level: the leader is asked again
    REFUSED = kind("proposal.refused")


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


class Resources:
    """The duty office's edits of the register through the API (api/services/resources.py), subject `resources`."""

    CREATED = kind("resources.created")
    UPDATED = kind("resources.updated")  # payload: each changed field's before and after
    TEAM_RELEASED = kind("resources.team_released")  # a busy team set available by hand


class Readiness:
    """The monthly readiness check 每月调度 (workflows/readiness.py), subject: its workflow id `readiness-…`."""

    CALL = episodes("readiness.call")
    OPENED = kind("readiness.opened")
    ANSWERED = kind("readiness.answered")  # a team's answer: ready (1) or not ready (2)
    NO_ANSWER = kind("readiness.no_answer")  # nobody answered: the duty phone, the leader; the duty chief told
    MARKED_UNREADY = kind("readiness.marked_unready")  # the register's team set to 不能出动
    CLOSED = kind("readiness.closed")  # the summary, sent to the duty chief


class Drill:
    STARTED = kind("drill.started")
    REPORTED = kind("drill.reported")


class Schedule:
    SYNCED = kind("schedule.synced")
    PAUSED = kind("schedule.paused")
    UNPAUSED = kind("schedule.unpaused")
    TRIGGERED = kind("schedule.triggered")
    BELOW_MINIMUM_NOTIFIED = kind("schedule.below_minimum.notified")  # the duty chief told: a pause below the minimum


class Bulletin:
    """The monthly bulletin 通报 (workflows/bulletin.py), subject `bulletin/<YYYY-MM>`."""
    COMPILED = kind("bulletin.compiled")
    RETURNED = kind("bulletin.returned")
    APPROVED = kind("bulletin.approved")
    SEALED = kind("bulletin.sealed")
    SENT = kind("bulletin.sent")
    REFUSED = kind("bulletin.refused")


def refused(procedure_prefix: str) -> str:
    """`<procedure>.refused`: a refused step (store/refusals.py)."""
    return check(f"{procedure_prefix}.refused")
