"""The call-out board's 到户到人 section (zh, en): each village's relay (workflows/relay.py)."""
from __future__ import annotations

RELAY_STRINGS: dict[str, tuple[str, str]] = {
    "rl_title": ("到户到人", "Relay to households"),
    "rl_note": ("村(社区)责任人应答后,须通知危险区群众并回复“到户 户数”;超时未回复即升级至乡镇(街道)负责人。",
                "Once a village person acknowledges, they inform the households in the danger zones and reply "
                "“到户 <households>”; unconfirmed by the deadline, the town head is called."),
    "rl_village": ("村(社区)", "Village"),
    "rl_person": ("责任人", "Person"),
    "rl_acked": ("已应答", "Acknowledged"),
    "rl_relayed": ("已到户", "Relayed"),
    "rl_households": ("到户户数", "Households"),
    "rl_overdue": ("超时未到户", "Overdue"),
    "rl_due": ("时限", "Due"),
    "rl_by": ("确认人", "Confirmed by"),
    "rl_on_behalf": ("代为确认", "on behalf"),
    "rl_late": ("逾时确认", "confirmed late"),
    "rl_summary": ("已到户 {relayed}/{requested} 村 · 共 {households} 户 · 超时 {overdue} · 逾时确认 {late}",
                   "Relayed {relayed}/{requested} villages · {households} households · overdue {overdue} · "
                   "late {late}"),
    "rl_record": ("代录到户", "Record relay"),
    "rl_reported_by": ("网格员(人员编号,可空)", "Grid worker (person id, optional)"),
    "rl_recorded": ("已记录到户", "Relay recorded"),
    "rl_state_requested": ("待到户", "asked"), "rl_state_escalated": ("已升级督促", "escalated"),
    "rl_state_unreachable": ("督促后仍未回复", "unanswered"), "rl_state_canceled": ("已取消", "canceled"),
    "rl_state_confirmed": ("已到户", "relayed"),
    "rl_yes": ("是", "yes"), "rl_no": ("否", "no"),
}
