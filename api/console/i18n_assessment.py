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
}
