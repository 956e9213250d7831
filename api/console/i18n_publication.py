"""The publication page's labels (zh, en): 精准发布 below orange, its counts and delivery rate (issue 20)."""
from __future__ import annotations

PUBLICATION_STRINGS: dict[str, tuple[str, str]] = {
    "pub_title": ("预警发布", "Warning publication"),
    "pub_link": ("发布情况", "Publication"),
    "pub_note": ("蓝色、黄色预警只发布不叫应:每人每个渠道发送一次,无需回复,不升级、不打电话。",
                 "Blue and yellow warnings are published, not called out: one message per person and channel, "
                 "no answer asked, no escalation, no voice call."),
    "pub_purpose_publish": ("预警发布", "publication"),
    "pub_purpose_update": ("预警更新", "update"),
    "pub_purpose_cancel": ("预警解除通知", "cancel notice"),
    "pub_status_running": ("等待送达回执", "awaiting delivery reports"),
    "pub_status_completed": ("全部有送达结果", "every message settled"),
    "pub_status_timed_out": ("等待期满已结束", "ended after its wait"),
    "pub_status_superseded": ("已转为叫应", "taken over by a call-out"),
    "pub_superseded_by": ("已升级为叫应", "Raised to a call-out"),
    "pub_persons": ("发布人数", "Persons"),
    "pub_sent": ("发送条数", "Sent"),
    "pub_delivered": ("已送达", "Delivered"),
    "pub_failed": ("发送失败", "Failed"),
    "pub_pending": ("待回执", "Awaiting report"),
    "pub_rate": ("送达率", "Delivery rate"),
    "pub_rate_hint": ("送达率 = 已送达 ÷ 发送条数", "delivery rate = delivered ÷ sent"),
    "pub_per_tier": ("分层统计", "Per tier"),
    "pub_failed_list": ("发送失败名单", "Not delivered"),
    "pub_messages": ("全部消息", "Every message"),
    "pub_none_failed": ("无", "none"),
    "pub_warning": ("预警", "Warning"),
    "pub_total": ("合计", "Total"),
    "pub_channel": ("渠道", "Channel"),
    "pub_sent_at": ("发送时间", "Sent at"),
}
