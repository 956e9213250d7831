"""The response proposal page's strings 响应建议 (api/console/proposals.py), Chinese first."""
from __future__ import annotations

PROPOSAL_STRINGS: dict[str, tuple[str, str]] = {
    "proposal": ("响应建议", "Response proposal"),
    "pr_warning": ("预警", "Warning"), "pr_plan": ("预案", "Plan"), "pr_level": ("建议响应级别", "Level proposed"),
    "pr_condition": ("启动条件", "Start condition"), "pr_leader": ("带班领导", "Leading leader"),
    "pr_status": ("状态", "Status"), "pr_expires": ("建议有效至", "Stands until"),
    "pr_reached": ("已通知", "Told"), "pr_escalated": ("已升级", "Escalated"), "pr_callout": ("叫应", "Call-out"),
    "pr_accept": ("同意启动应急响应", "Accept: start the response"), "pr_decline": ("不同意", "Decline"),
    "pr_reason": ("不同意的理由(必填)", "Why not (required)"),
    "pr_decided": ("决定", "Decision"), "pr_activation": ("已启动的响应", "Response started"),
    "pr_proposed": ("待决定", "waiting for a decision"), "pr_accepted": ("已同意", "accepted"),
    "pr_declined": ("未同意", "declined"), "pr_expired": ("已撤回", "withdrawn"), "pr_opening": ("发送中", "being sent"),
    "pr_confirm": ("将以此预警接报事件并启动应急响应,召集指挥部。", "An incident is received from this warning and the "
                   "response started: the headquarters is convened."),
}
