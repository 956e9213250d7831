"""The labels of the scorecards page 考核 (per town and department, from the audit trail), Chinese first: added to
i18n.STRINGS on import."""
from __future__ import annotations

from api.console.i18n import STRINGS

SCORECARD_STRINGS: dict[str, tuple[str, str]] = {
    "scorecards": ("考核统计", "Scorecards"),
    "scd_intro": ("按乡镇(街道)和部门统计叫应、演练、信息报送、六问抽查、督办、工单和通讯录情况,均由审计记录计算;"
                  "演练单独统计,不计入叫应。点击数字可查看其依据的记录回放。",
                  "Call-out answers, drills, reports, 六问 spot checks, tasks, work orders and contacts per town and "
                  "department, computed from the audit trail; drills counted apart, never as call-outs. Click a figure "
                  "for the records it came from."),
    "scd_kind": ("类别", "Kind"), "scd_town": ("乡镇(街道)", "Towns"), "scd_department": ("部门", "Departments"),
    "scd_unit": ("单位", "Unit"),
    "scd_callouts": ("叫应", "Call-outs"), "scd_called": ("叫应人次", "Called"),
    "scd_answered": ("时限内应答", "Answered in time"), "scd_answered_late": ("逾期应答", "Answered late"),
    "scd_never": ("未应答", "Never answered"), "scd_escalated": ("需升级", "Escalated"),
    "scd_median": ("应答用时中位数", "Median time to answer"), "scd_p90": ("应答用时P90", "P90 time to answer"),
    "scd_reporting": ("信息报送", "Reports"), "scd_owed": ("应报", "Owed"), "scd_on_time": ("按时", "On time"),
    "scd_late": ("迟报", "Late"), "scd_missing": ("漏报", "Missing"), "scd_late_max": ("最长迟报", "Latest by"),
    "scd_spotchecks": ("六问抽查", "Spot checks"), "scd_checks": ("抽查次数", "Checks"),
    "scd_answered_no": ("回答“否”", "Answered no"), "scd_followups_overdue": ("整改逾期", "Follow-ups overdue"),
    "scd_tasks": ("督办", "Tasks and directives"), "scd_assigned": ("交办", "Assigned"),
    "scd_overdue": ("逾期未办", "Overdue"),
    "scd_workorders": ("工单", "Work orders"), "scd_wo_assigned": ("分拨", "Assigned"),
    "scd_wo_signed_late": ("签收超时", "Signed late"), "scd_wo_never_signed": ("未签收", "Never signed"),
    "scd_wo_closed_late": ("办结超时", "Closed late"),
    "scd_drills": ("演练", "Drills"), "scd_drills_n": ("抽中次数", "Drills"),
    "scd_drill_called": ("演练叫应人次", "Called in drills"), "scd_responded": ("30分钟内响应", "Responded in time"),
    "scd_own_reports": ("本单位报告", "Own reports"), "scd_own_late": ("本单位迟报", "Own reports late"),
    "scd_contacts": ("通讯录", "Contacts"), "scd_persons": ("在岗人员", "Persons"),
    "scd_confirmed": ("一年内已核实", "Confirmed within a year"), "scd_stale": ("超期未核实", "Not confirmed"),
    "scd_failing": ("号码失效", "Numbers failing"),
    "scd_events": ("依据记录", "Records"), "scd_none": ("本期无记录", "Nothing in this period"),
    "scd_minutes": ("分钟", "min"),
}
STRINGS.update(SCORECARD_STRINGS)
