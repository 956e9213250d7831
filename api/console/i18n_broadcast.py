"""The 应急广播 card of the call-out board (zh, en): each broadcast request and its towns' states."""
from __future__ import annotations

BROADCAST_STRINGS: dict[str, tuple[str, str]] = {
    "bc_title": ("应急广播", "Emergency broadcast"),
    "bc_none": ("本次叫应未使用应急广播", "No emergency broadcast for this call-out"),
    "bc_town": ("乡镇(街道)", "Town / street"),
    "bc_area": ("广播区域", "Broadcast area"),
    "bc_state": ("状态", "State"),
    "bc_updated": ("更新时间", "Updated"),
    "bc_repeat": ("播放 {n} 遍", "played {n} times"),
    "bc_purpose_alert": ("预警", "Warning"),
    "bc_purpose_update": ("预警更新", "Update"),
    "bc_purpose_cancel": ("解除", "All clear"),
    "bc_s_requested": ("已请求", "Requested"),
    "bc_s_accepted": ("平台已受理", "Accepted by the platform"),
    "bc_s_played": ("已播放", "Played"),
    "bc_s_partial": ("部分播放", "Partly played"),
    "bc_s_failed": ("失败", "Failed"),
}
