"""The duty day in the API: schedules (drills, handovers, the spot-check sweep, the confirmation round),
handover steps, spot-check answers and follow-ups, contact confirmations, and the read models.

Recurring procedures are Temporal Schedules built from definitions/duty/*.yaml (schedules.py). Steps
are workflow updates; their validators' refusals become HTTP answers (403 role, 409 order, 422 input)
and are recorded in the audit trail (common.update_step). No database transaction is held while
Temporal is called. One module per concept: schedules, handovers, drills, spotchecks, freshness;
what they share in common.py. Everything public is re-exported here (`from api.services import duty
as svc; svc.list_schedules(...)`).
"""
from __future__ import annotations

from api.services.duty.common import (
    STATUS,
    DutyError,
    duty_settings,
    events,
    get_row,
    link_used,
    person,
    update_step,
    use_link,
)
from api.services.duty.drills import (RunStarted, callout_figures, drill_detail, drill_figures, drill_list, drill_weeks,
                                      run_drill)
from api.services.duty.freshness import (
    RoundStarted,
    confirm_by_link,
    contact_list,
    freshness_preview,
    owned_records,
    round_detail,
    rounds,
    start_round,
    target_warnings,
)
from api.services.duty.handovers import handover_detail, handover_list, handover_step, start_handover
from api.services.duty.schedules import (
    SCHEDULES_SUBJECT,
    ScheduleControlOut,
    ScheduleDef,
    ScheduleOut,
    SyncOut,
    control_schedule,
    list_schedules,
    schedule_defs,
    sync_schedules,
)
from api.services.duty.spotchecks import (
    CheckStarted,
    KeysOut,
    answer_by_link,
    form_context,
    ivr_call,
    record_keys,
    spotcheck_answer,
    spotcheck_detail,
    spotcheck_list,
    spotcheck_resolve,
    start_spotcheck,
)

__all__ = ["SCHEDULES_SUBJECT", "STATUS", "CheckStarted", "DutyError", "KeysOut", "RoundStarted", "RunStarted",
           "ScheduleControlOut", "ScheduleDef", "ScheduleOut", "SyncOut", "answer_by_link", "callout_figures",
           "confirm_by_link", "contact_list", "control_schedule", "drill_detail", "drill_figures", "drill_list", "drill_weeks",
           "duty_settings", "events", "form_context", "freshness_preview", "get_row", "handover_detail",
           "handover_list", "handover_step", "ivr_call", "link_used", "list_schedules", "owned_records", "person", "record_keys",
           "round_detail", "rounds", "run_drill", "schedule_defs", "spotcheck_answer", "spotcheck_detail",
           "spotcheck_list", "spotcheck_resolve", "start_handover", "start_round", "start_spotcheck",
           "sync_schedules", "target_warnings", "update_step", "use_link"]
