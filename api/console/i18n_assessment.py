"""The labels of 考核与通报 beyond the scorecards (issue 22): the weekly drill count on the desk and the monthly
bulletin 通报's pages, Chinese first (api/console/i18n.py adds them to its table)."""
from __future__ import annotations

ASSESSMENT_STRINGS: dict[str, tuple[str, str]] = {
    "def_assessment": ("考核指标与权重", "Assessment thresholds and weights"),
    "asm_thresholds": ("考核指标", "Thresholds"), "asm_weights": ("排名权重", "Ranking weights"),
    "asm_drill_weeks": ("演练未达每周最低要求的周数不超过", "Weeks below the weekly drill minimum at most"),
    # the weekly drill count 演练周计数
    "dw_title": ("本周演练计数", "Drills this week"),
    "dw_this_week": ("本周", "This week"),
    "dw_last_week": ("上周", "Last week"),
    "dw_kind_district": ("区级连通性演练", "District connectivity drills"),
    "dw_kind_towns": ("乡镇(街道)抽查演练", "Town spot-check drills"),
    "dw_run": ("已开展", "Run"),
    "dw_minimum": ("每周至少", "Weekly minimum"),
    "dw_below": ("未达最低要求", "Below the minimum"),
    "dw_short": ("尚差", "Still short"),
    "dw_met": ("已达标", "Met"),
    "dw_times": ("次", "times"),
    # the monthly bulletin 通报
    "bl_title": ("月度考核通报", "Monthly bulletins"), "bl_title_one": ("应急值守工作情况通报", " duty bulletin"),
    "bl_intro": ("每月第一个工作日自动汇编上月通报,经带班领导审定后印发各单位并封存。",
                 "Compiled on the first working day of each month for the month before; issued to the units and sealed "
                 "once the leading leader approves it."),
    "bl_month": ("月份", "Month"), "bl_start": ("立即汇编", "Compile now"),
    "bl_start_hint": ("不填月份即汇编上月;每月一份通报", "No month: the last one; one bulletin a month"), "bl_version": ("稿次", "Version"), "bl_compiled_at": ("汇编时间", "Compiled"),
    "bl_none": ("尚无通报", "No bulletin yet"), "bl_period": ("统计期间", "Period"), "bl_pdf": ("下载PDF", "PDF"),
    "bl_sealed": ("已封存", "Sealed"), "bl_returned": ("退回", "Returned"), "bl_decide": ("审定通报", "Decide"),
    "bl_approve": ("审定印发", "Approve"), "bl_return": ("退回重新汇编", "Return"), "bl_reason": ("退回理由", "Why"),
    "bl_below_only": ("仅看未达标单位", "Only units below a threshold"), "bl_rules": ("考核指标", "Thresholds"),
    "bl_ranking": ("综合排名", "Ranking"), "bl_rank": ("名次", "Rank"), "bl_score": ("综合得分", "Score"),
    "bl_answer_rate": ("叫应时限内应答率", "Answered in time"), "bl_on_time_rate": ("报送按时率", "Reports on time"),
    "bl_breaches": ("未达标指标", "Below"), "bl_late_missing": ("迟报、漏报", "Late and missing reports"),
    "bl_unanswered": ("叫应未应答", "Unanswered call-outs"), "bl_drills": ("演练开展情况", "Drills per week"),
}
