"""The labels of the work order pages 工单 (the list with its countdowns, one order's page with its steps),
Chinese first: added to i18n.STRINGS on import."""
from __future__ import annotations

from api.console.i18n import STRINGS

WORKORDER_STRINGS: dict[str, tuple[str, str]] = {
    "workorders": ("工单", "Work orders"), "workorder": ("工单", "Work order"),
    "wo_intro": ("12345 热线转办及 110/119/120/12122 推送的工单:分拨、签收、反馈、办结、审核、回访,全程留痕。",
                 "Work orders from the 12345 hotline and 110/119/120/12122: assign, sign, feed back, complete, check, "
                 "answer back; every step on record."),
    "wo_ticket": ("工单号", "Ticket"), "wo_source": ("来源", "Source"), "wo_category": ("类别", "Category"),
    "wo_urgency": ("紧急程度", "Urgency"), "wo_urgent": ("紧急", "urgent"), "wo_normal": ("一般", "normal"),
    "wo_place": ("地点", "Place"), "wo_town": ("乡镇(街道)", "Town/street"), "wo_words": ("来电内容", "Caller's words"),
    "wo_caller": ("来电号码", "Caller's number"), "wo_received": ("受理时间", "Received"),
    "wo_status": ("状态", "Status"), "wo_unit": ("承办单位", "Unit"), "wo_next_due": ("下一时限", "Next limit"),
    "wo_proposed": ("建议承办单位", "Proposed unit"), "wo_new": ("登记工单", "New work order"),
    "wo_assign": ("分拨", "Assign"), "wo_reassign": ("改派", "Reassign"), "wo_unit_id": ("单位编号", "Unit id"),
    "wo_note": ("分拨说明", "Note"), "wo_sign": ("签收", "Sign"), "wo_return": ("退回", "Return"),
    "wo_reason": ("理由", "Reason"), "wo_feedback": ("办理反馈", "Feedback"), "wo_complete": ("办结", "Complete"),
    "wo_result": ("办理结果", "Result"), "wo_close": ("审核办结", "Close"), "wo_send_back": ("退回重办", "Send back"),
    "wo_satisfaction": ("回访满意度", "Satisfaction"), "wo_comment": ("回访意见", "Comment"),
    "wo_incident": ("转为突发事件", "Turn into an incident"), "wo_incident_linked": ("已转突发事件", "Incident"),
    "wo_assignments": ("分拨记录", "Assignments"), "wo_deadlines": ("时限", "Limits"),
    "wo_sign_limit": ("签收时限", "Sign by"), "wo_feedback_limit": ("反馈时限", "Feedback by"),
    "wo_complete_limit": ("办结时限", "Complete by"), "wo_on_time": ("按时", "on time"), "wo_late": ("逾期", "late"),
    "wo_overdue": ("已超时", "overdue"), "wo_open": ("未到期", "open"), "wo_signed_by": ("签收人", "Signed by"),
    "wo_returned": ("已退回", "returned"), "wo_sent_back": ("退回重办次数", "Sent back"),
    "wo_feedback_list": ("反馈记录", "Feedback"), "wo_visits": ("回访", "Answer back"),
    "wo_posted": ("已推送热线平台", "Posted to the platform"), "wo_fire_copied": ("已抄报消防救援", "Fire rescue copied"),
    "wo_on_behalf": ("代录", "on behalf"), "wo_actions": ("办理", "Steps"), "wo_none": ("暂无工单。", "No work order."),
    "wo_desk": ("热线工单:待分拨、待签收、办理中的工单及其时限。", "Hotline work orders: to assign, to sign, in hand."),
    "wo_st_received": ("待分拨", "to assign"), "wo_st_assigned": ("待签收", "to sign"), "wo_st_signed": ("办理中", "in hand"),
    "wo_st_returned": ("已退回待改派", "returned"), "wo_st_completed": ("已办结待审核", "completed"),
    "wo_st_sent_back": ("退回重办", "sent back"), "wo_st_closed": ("已审核办结待回访", "closed"),
    "wo_st_visited": ("已回访", "answered back"),
    "wo_stats": ("近30天各单位办理情况", "By unit, last 30 days"), "wo_assigned_n": ("分拨", "Assigned"),
    "wo_signed_on_time": ("按时签收", "Signed on time"), "wo_signed_late": ("逾期签收", "Signed late"),
    "wo_never_signed": ("超时未签收", "Not signed"), "wo_returned_n": ("退回", "Returned"),
    "wo_closed_on_time": ("按时办结", "Closed on time"), "wo_closed_late": ("逾期办结", "Closed late"),
    "wo_sent_back_n": ("退回重办", "Sent back"),
}

STRINGS.update({k: v for k, v in WORKORDER_STRINGS.items() if k not in STRINGS})  # a key twice: the strings test says
