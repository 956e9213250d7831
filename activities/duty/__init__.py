"""Duty-day activities: the I/O of handovers, drills, 六问 spot checks and confirmation rounds.

`duty.flush` sends and records a batch of the escalation interpreter's actions for any
duty procedure (rendering each message per procedure, Chinese first); the others open,
record and close each procedure against the directory, the roster and the read models
in store/duty.py. Audit events go to the procedure's subject in the same transaction as
the read model, so the console and the audit trail agree.

One module per procedure: sending.py (the flush and its messages), handover.py, spotcheck.py,
freshness.py, drill.py, notice.py (a notice to those on duty). Activity names (`duty.*`) are what workflows and saved histories call.
"""
from __future__ import annotations

from activities.common import local
from activities.duty.drill import drill_figures, drill_prepare, drill_report
from activities.duty.sending import flush
from activities.duty.freshness import (
    freshness_close,
    freshness_load,
    freshness_open,
    round_deadline,
)
from activities.duty.handover import handover_items, handover_open, handover_record
from activities.duty.notice import notice
from activities.duty.spotcheck import spotcheck_candidates, spotcheck_open, spotcheck_record

ALL = [flush, handover_open, handover_record, spotcheck_open, spotcheck_record, spotcheck_candidates, freshness_open,
       freshness_load, freshness_close, drill_prepare, drill_report, notice]

__all__ = ["ALL", "drill_figures", "drill_prepare", "drill_report", "flush", "freshness_close",
           "freshness_load", "freshness_open", "handover_items", "handover_open", "handover_record", "local", "notice",
           "round_deadline", "spotcheck_candidates", "spotcheck_open", "spotcheck_record"]
