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


class Reporting:
    RECORD = "reporting.record"
    REMIND = "reporting.remind"
    TARGETS = "reporting.targets"
    FLUSH = "reporting.flush"
    SETTLE = "reporting.settle"  # the end of a response or a review settles its incidents' chains (an update)


class Activation:
    RESOLVE = "activation.resolve"
    RECORD = "activation.record"
    NOTIFY = "activation.notify"
    FLUSH = "activation.flush"


class Review:
    OPEN = "review.open"
    RECORD = "review.record"
    NOTIFY = "review.notify"
    TARGETS = "review.targets"
    FLUSH = "review.flush"
    COMPILE = "review.compile"
    SEAL = "review.seal"


class Proposal:
    OPEN = "proposal.open"
    RECORD = "proposal.record"
    FLUSH = "proposal.flush"
    ACTIVATE = "proposal.activate"


class Duty:
    FLUSH = "duty.flush"
    DRILL_PREPARE = "duty.drill_prepare"
    DRILL_REPORT = "duty.drill_report"
    FRESHNESS_OPEN = "duty.freshness_open"
    FRESHNESS_LOAD = "duty.freshness_load"
    FRESHNESS_CLOSE = "duty.freshness_close"
    HANDOVER_OPEN = "duty.handover_open"
    HANDOVER_RECORD = "duty.handover_record"
    SPOTCHECK_CANDIDATES = "duty.spotcheck_candidates"
    SPOTCHECK_OPEN = "duty.spotcheck_open"
    SPOTCHECK_RECORD = "duty.spotcheck_record"


ALL = sorted(v for c in (Audit, Callout, Reporting, Activation, Review, Proposal, Duty)
             for k, v in vars(c).items() if k.isupper())
