"""Activity names: the contract between the workflows and activities/.

A workflow calls an activity by its name and a history records the name, so a name is defined
once, here, and both sides import it (`@activity.defn(name=Reporting.RECORD)`,
`self.call(Reporting.RECORD, …)`). Renaming one breaks the saved histories' replay
(tests/workflows/test_replay_histories.py): add a new activity instead.
"""
from __future__ import annotations


class Audit:
    APPEND = "audit.append"


class Callout:
    RESOLVE = "callout.resolve"
    OPEN = "callout.open"
    LOAD_SHARD = "callout.load_shard"
    FLUSH = "callout.flush"
    RECORD_UPDATE = "callout.record_update"
    FINISH = "callout.finish"
    RELAY_FLUSH = "callout.relay_flush"  # 到户到人: a relay batch (workflows/relay.py)
    STORED = "callout.stored_answers"  # the targets the API has stored an answer for (store/answers.py)


class Broadcast:
    PLAY = "broadcast.play"  # 应急广播: one request to the IP broadcast platform (activities/broadcast.py)


class Reporting:
    RECORD = "reporting.record"
    REMIND = "reporting.remind"
    TARGETS = "reporting.targets"
    FLUSH = "reporting.flush"
    SETTLE = "reporting.settle"  # the end of a response or a review settles its incidents' chains (an update)
    UPWARD = "reporting.upward"  # one report to the city (province) through the city line, SMS as its fallback


class Activation:
    RESOLVE = "activation.resolve"
    RECORD = "activation.record"
    NOTIFY = "activation.notify"
    FLUSH = "activation.flush"


class Resources:
    """The resource register 应急资源 (activities/resources.py)."""

    RESERVE = "resources.reserve"  # mark register teams busy for a dispatch plan, or refuse
    RELEASE = "resources.release"  # make them available again
    READINESS_OPEN = "resources.readiness_open"  # the monthly readiness check: its teams as targets
    READINESS_RECORD = "resources.readiness_record"  # answers, the register's readiness, the read model
    READINESS_CLOSE = "resources.readiness_close"  # the summary to the duty chief


class Review:
    OPEN = "review.open"
    RECORD = "review.record"
    NOTIFY = "review.notify"
    TARGETS = "review.targets"
    FLUSH = "review.flush"
    COMPILE = "review.compile"
    SEAL = "review.seal"


class WorkOrder:
    RECORD = "workorder.record"
    UNIT = "workorder.unit"  # who answers for a unit, whom to call
    NOTIFY = "workorder.notify"  # 抄报消防救援
    FLUSH = "workorder.flush"
    POST = "workorder.post"  # 回访: the result to the hotline platform


class Proposal:
    OPEN = "proposal.open"
    RECORD = "proposal.record"
    FLUSH = "proposal.flush"
    ACTIVATE = "proposal.activate"


class Bulletin:
    COMPILE = "bulletin.compile"  # the month's 通报: data, HTML, PDF (activities/bulletin.py)
    RECORD = "bulletin.record"
    SEAL = "bulletin.seal"
    SEND = "bulletin.send"


class Duty:
    FLUSH = "duty.flush"
    DRILL_PREPARE = "duty.drill_prepare"
    DRILL_REPORT = "duty.drill_report"
    NOTICE = "duty.notice"  # a notice to those on duty, no answer wanted (workflows/notice.py)
    FRESHNESS_OPEN = "duty.freshness_open"
    FRESHNESS_LOAD = "duty.freshness_load"
    FRESHNESS_CLOSE = "duty.freshness_close"
    HANDOVER_OPEN = "duty.handover_open"
    HANDOVER_RECORD = "duty.handover_record"
    SPOTCHECK_CANDIDATES = "duty.spotcheck_candidates"
    SPOTCHECK_OPEN = "duty.spotcheck_open"
    SPOTCHECK_RECORD = "duty.spotcheck_record"


class Publication:
    OPEN = "publication.open"
    SEND = "publication.send"
    DELIVERY = "publication.delivery"
    SUPERSEDED = "publication.superseded"
    FINISH = "publication.finish"


ALL = sorted(v for c in (Audit, Callout, Broadcast, Reporting, Activation, Resources, Review, WorkOrder, Proposal, Duty,
                         Publication, Bulletin)
             for k, v in vars(c).items() if k.isupper())
