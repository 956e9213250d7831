"""Post-event review 复盘: the read model (tables), and the statistics and timeline of the event report,
computed from the audit trail alone (stats: one module per procedure's figures; timeline).

Kinds and payload keys are read through workflows/kit/events.py. The names below are the package's
public ones (api/, activities/, cli/, tests).
"""
from store.review.activation_stats import ITEM_STATES, activation_stats
from store.review.callout_stats import callout_stats
from store.review.common import ANSWERS, durations, rate, send_key
from store.review.reporting_stats import reporting_stats
from store.review.stats import kind_of, linked_callouts, linked_proposals, linked_workorders, review_stats, statistics
from store.review.tables import CaseFile, Review, ReviewReport, ReviewUnit
from store.review.timeline import LEVEL_ZH, STATUS_ZH, describe, timeline

__all__ = ["ANSWERS", "ITEM_STATES", "LEVEL_ZH", "STATUS_ZH", "CaseFile", "Review", "ReviewReport", "ReviewUnit",
           "activation_stats", "callout_stats", "describe", "durations", "kind_of", "linked_callouts", "linked_proposals", "linked_workorders", "rate",
           "reporting_stats", "review_stats", "send_key", "statistics", "timeline"]
