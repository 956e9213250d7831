"""Post-event review activities: open, the read model and audit trail, asking and reminding the units,
whom to call when a summary is overdue, sending, compiling the event report, sealing the case file.

The workflow hands every write the review's latest state (`ReviewView`); the rows of store/review/
are upserted from it in the same transaction as the audit events.

Modules: view.py (the read model, `review.record`), opening.py, asking.py (requests, reminders,
overdue escalation), report.py (the event report), sealing.py (the case file).
"""
from __future__ import annotations

from activities.review.asking import find_targets, flush, notify, render_send, targets
from activities.review.opening import derive_units, open_, open_review
from activities.review.report import build_report_data, compile_, compile_report
from activities.review.sealing import seal, seal_case
from activities.review.view import record, save_view, unit_post

__all__ = ["build_report_data", "compile_", "compile_report", "derive_units", "find_targets", "flush", "notify",
           "open_", "open_review", "record", "render_send", "save_view", "seal", "seal_case", "targets", "unit_post"]
