"""What an audit event is called where people read the trail (the console's replay, the case file): a Chinese
name for every kind registered in workflows/kit/events.py, an English one derived from the kind, and a short
summary of a payload in words, names instead of ids.

Every registered kind must have a name here (tests/unit/test_event_labels.py): a new kind is named when it
is defined.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from workflows.kit.events import EPISODE_PREFIXES, KINDS

# An escalation episode's events are `<prefix>.<record>`: the episode's name and the record's.
EPISODES = {
    "callout": "叫应", "answer": "应答", "report.escalation": "报送催报", "report.receipt": "报告签收",
    "incident.call": "事件通知", "activation.convene": "指挥部召集", "activation.notice": "响应通知",
    "activation.overdue": "超时督办", "activation.dispatch.order": "调度指令", "activation.reinforcement.request": "增援请求",
    "activation.reinforcement.chase": "增援催办", "activation.experts": "会商专家呼叫", "review.escalation": "复盘催交", "spotcheck.call": "六问抽查",
    "spotcheck.followup": "六问整改", "handover": "交接班", "freshness": "通讯录确认",
    "readiness.call": "每月调度呼叫", "workorder.call": "工单签收呼叫", "workorder.chase": "工单督办",
    "relay": "到户", "proposal": "响应建议",
}
RECORDS = {
    "sent": "发出", "ack": "应答", "ack.late": "超时后应答", "delivery": "送达回执", "timeout": "等待超时",
    "unreachable": "联系不上", "wait_skipped": "免等待", "repeat": "重复呼叫", "escalated": "升级",
    "escalation_skipped": "无可升级对象", "informed": "告知上级", "inform_skipped": "未告知上级", "canceled": "取消",
    "no_channel": "无可用渠道", "gap": "缺人", "recall": "重新呼叫",
}
KIND_NAMES = {
    # the call-out and the warnings it follows
    "warning.received": "收到预警", "warning.update": "预警更新", "warning.cancel": "预警解除",
    "warning.ack": "预警签收", "warning.error": "预警有误", "warning.refused": "预警被拒收",
    "callout.started": "叫应开始", "callout.plan_chosen": "选定叫应方案", "callout.targets_resolved": "确定叫应对象",
    "callout.updated": "叫应更新", "callout.cancel_requested": "请求取消叫应", "callout.summary": "叫应小结",
    "callout.ended": "叫应结束",
    "publication.started": "预警发布开始", "publication.recipients_resolved": "确定发布对象",
    "publication.sent": "发布短信发出", "publication.delivery": "发布送达回执", "publication.superseded": "发布被接替",
    "publication.summary": "发布小结", "publication.ended": "预警发布结束",
    "answer.ambiguous": "应答无法归属", "answer.assigned": "应答已归属",
    "relay.requested": "到户请求", "relay.confirmed": "到户确认", "relay.late": "到户逾时确认",
    "gateway.opted_out": "号码退订", "audit.anchor": "审计锚点", "audit.chain.sealed": "分片审计链封存",
    "broadcast.requested": "请求应急广播", "broadcast.accepted": "广播平台已受理", "broadcast.played": "应急广播已播放",
    "broadcast.failed": "应急广播失败",
    "access.token.created": "发放令牌", "access.token.role_changed": "变更令牌角色", "access.token.revoked": "吊销令牌",
    # the reporting chain 信息报送
    "incident.received": "接报", "incident.trigger": "触发报送", "incident.continued": "续接记录",
    "incident.closed": "报送结束", "report.refused": "操作被拒绝", "report.overdue.gap": "超时无人催报",
    "report.receipts.gap": "签收缺人", "report.trigger.gap": "触发缺人",
    "report.verbal.made": "口头报告", "report.verbal.late": "口头报告迟报", "report.verbal.omitted": "口头报告漏报",
    "report.verbal.overdue": "口头报告超时", "report.verbal.reminder": "口头报告提醒",
    "report.verbal.lapsed": "口头报告未报(已终止)", "report.unit.late": "报告单位迟报",
    "report.city.sent": "上报市级", "report.city.receipt": "市级签收", "report.city.fallback": "上报改发短信", "report.city.failed": "上报失败",
    "report.vertical.made": "拉条报告", "report.vertical.gap": "拉条不同步", "report.settled": "报送清结(响应终止或复盘签发)",
    # the activation 分级响应
    "activation.started": "启动响应", "activation.continued": "续接记录", "activation.refused": "操作被拒绝",
    "activation.gap": "缺人", "activation.hq.convened": "指挥部到位", "activation.level.changed": "响应级别调整",
    "activation.level.stood_down": "降级", "activation.terminated": "终止响应", "activation.terminated.notice": "终止通知",
    "activation.item.reminder": "任务提醒", "activation.item.returned_notice": "退回通知",
    "activation.dispatch.drafted": "调度方案拟定", "activation.dispatch.consult_requested": "请求会商",
    "activation.dispatch.consulted": "会商完成", "activation.dispatch.approval_requested": "请求审批调度",
    "activation.dispatch.approved": "调度批准", "activation.dispatch.returned": "调度退回",
    "activation.dispatch.sector_informed": "告知行业部门",
    "activation.dispatch.team_busy": "救援队伍出动(占用)", "activation.dispatch.team_released": "救援队伍归建(释放)",
    "activation.supplies.requested": "物资调拨申请", "activation.supplies.shortage": "物资库存不足(建议请求市级增援)",
    "activation.supplies.approved": "物资调拨批准", "activation.supplies.refused": "物资调拨未批准",
    "activation.supplies.picked_up": "物资出库", "activation.supplies.received": "物资签收", "activation.reinforcement.requested": "请求增援",
    "activation.meeting.convened": "召集会商研判", "activation.meeting.gap": "会商研判缺专家",
    "activation.meeting.concluded": "会商研判结论", "activation.reinforcement.answered": "增援答复", "activation.reinforcement.overdue": "增援答复超时",
    "activation.review.started": "启动复盘", "activation.review.already_started": "复盘已启动",
    # the response proposal 响应建议 (预警和响应一体化)
    "proposal.made": "提出响应建议", "proposal.sent": "发出响应建议", "proposal.escalated": "响应建议升级",
    "proposal.accepted": "同意启动响应", "proposal.declined": "不同意启动响应", "proposal.expired": "响应建议撤回", "proposal.raised": "响应建议级别提高",
    "proposal.refused": "操作被拒绝",
    # the review 复盘
    "review.started": "复盘开始", "review.refused": "操作被拒绝", "review.closed": "复盘结束",
    "review.escalation.gap": "催交缺人", "review.summary.requested": "请求提交总结", "review.summary.submitted": "提交总结",
    "review.summary.reminder": "总结提醒", "review.summary.late": "总结迟交", "review.summary.overdue": "总结超时",
    "review.report.compiled": "汇编事件报告", "review.report.returned": "报告退回", "review.report.signed": "报告签发",
    "review.report.final": "报告定稿", "review.sealed": "案卷封存",
    # the duty day
    "resources.created": "新增应急资源", "resources.updated": "修改应急资源", "resources.team_released": "救援队伍手动释放",
    "readiness.opened": "每月调度开始", "readiness.answered": "救援队伍应答", "readiness.no_answer": "救援队伍无人应答",
    "readiness.marked_unready": "标为不能出动", "readiness.closed": "每月调度结束",
    "drill.started": "演练开始", "drill.reported": "演练结果", "schedule.paused": "计划暂停", "schedule.unpaused": "计划恢复",
    "schedule.synced": "计划同步", "schedule.triggered": "计划执行",
    "schedule.below_minimum.notified": "演练低于每周最低要求已告知值班长",
    "bulletin.compiled": "汇编通报", "bulletin.returned": "通报退回", "bulletin.approved": "通报审定",
    "bulletin.sealed": "通报封存", "bulletin.sent": "通报印发", "bulletin.refused": "操作被拒绝",
    "handover.opened": "交接班开始", "handover.note_edited": "交班记录修改", "handover.handed_over": "交班",
    "handover.taken_over": "接班", "handover.not_taken_over": "未接班", "handover.leader_acknowledged": "带班领导确认",
    "handover.skipped": "跳过交接班", "handover.refused": "操作被拒绝", "handover.closed": "交接班结束",
    "spotcheck.opened": "六问抽查开始", "spotcheck.answered": "六问作答", "spotcheck.answered.late": "六问超时作答",
    "spotcheck.skipped": "六问抽查跳过", "spotcheck.refused": "操作被拒绝", "spotcheck.closed": "六问抽查结束",
    "spotcheck.followup.opened": "整改开始", "spotcheck.followup.overdue": "整改超时",
    "spotcheck.followup.resolved": "整改完成", "spotcheck.followup.unresolved": "整改未完成", "spotcheck.followup.gap": "整改缺人",
    "freshness.opened": "通讯录确认开始", "freshness.confirmed_late": "逾期确认", "freshness.refused": "操作被拒绝",
    "freshness.closed": "通讯录确认结束",
    # hotline work orders 工单
    "workorder.received": "工单受理", "workorder.continued": "工单续跑", "workorder.assigned": "工单分拨",
    "workorder.gap": "工单缺人", "workorder.signed": "工单签收", "workorder.returned": "工单退回",
    "workorder.feedback": "办理反馈", "workorder.completed": "工单办结", "workorder.sent_back": "退回重办",
    "workorder.closed": "审核办结", "workorder.fire_copied": "抄报消防救援", "workorder.visit.posted": "回访结果推送",
    "workorder.visit.answered": "回访满意度", "workorder.visit.unanswered": "回访未答复",
    "workorder.incident_linked": "转为突发事件", "incident.from_workorder": "来源工单", "workorder.ended": "工单结束",
    "workorder.refused": "操作被拒绝",
    "workorder.sign.overdue": "签收超时", "workorder.sign.late": "逾期签收", "workorder.feedback.overdue": "反馈超时",
    "workorder.feedback.late": "逾期反馈", "workorder.complete.overdue": "办结超时", "workorder.complete.late": "逾期办结",
}
_REPORTS = {"written": "书面报告", "followup": "续报", "final": "终报"}
_REPORT_STEPS = {"drafted": "起草", "approved": "审核通过", "returned": "退回修改", "submitted": "报出", "late": "迟报",
                 "omitted": "漏报", "overdue": "超时", "reminder": "提醒", "lapsed": "未报(已终止)"}
_ITEMS = {"task": "任务", "directive": "督办事项"}
_ITEM_STEPS = {"opened": "下达", "issued": "下达", "accepted": "接收", "feedback": "反馈", "returned": "退回",
               "closed": "办结", "late": "逾期办结", "overdue": "超时"}
for _r, _zh in _REPORTS.items():
    KIND_NAMES.update({f"report.{_r}.{s}": _zh + z for s, z in _REPORT_STEPS.items()})
for _i, _zh in _ITEMS.items():
    KIND_NAMES.update({f"activation.{_i}.{s}": _zh + z for s, z in _ITEM_STEPS.items()})


def _episode_name(kind: str) -> str | None:
    prefix = max((p for p in EPISODE_PREFIXES if kind.startswith(p + ".")), key=len, default=None)
    if prefix is None:
        return None
    record = RECORDS.get(kind[len(prefix) + 1:])
    return f"{EPISODES.get(prefix, prefix)}·{record}" if record else None


def event_name(kind: str, lang: str = "zh") -> str:
    """The kind as people call it: Chinese (any kind registered, and older kinds read back as they were
    written when no name is known), or English words."""
    if lang == "en":
        return kind.replace("_", " ").replace(".", " · ")
    return KIND_NAMES.get(kind) or _episode_name(kind) or kind


def tier_name(kind: str, tier: str, items: Mapping[str, str]) -> str:
    """A replayed episode group (`convene/0`, `notice/T-patrol`) in words: the episode's name and, for an item's
    episode, the item's label."""
    prefix, _, rest = tier.partition("/")
    procedure = {"reporting": "report"}.get(kind, kind)
    name = EPISODES.get(f"{procedure}.{prefix}") or EPISODES.get(prefix) or prefix
    item = items.get(rest.split("/")[0])
    return f"{name}·{item}" if item else name


def unnamed_kinds() -> list[str]:
    """Registered kinds without a Chinese name (the test asks for none)."""
    return [k for k in sorted(KINDS) if k not in KIND_NAMES and _episode_name(k) is None]


# ------------------------------------------------------------------ a payload in words

# The keys worth a word, in the order a summary reads; the rest stays in the raw record.
_KEYS: list[tuple[str, str, str]] = [
    ("person_id", "人员", "person"), ("target", "对象", "target"), ("unit_id", "单位", "unit"), ("unit", "单位", "unit"),
    ("assignee", "承办", "assignee"), ("commander", "指挥长", "commander"), ("channel", "渠道", "channel"),
    ("status", "状态", "status"), ("level", "级别", "level"), ("from_level", "原级别", "from"), ("to_level", "新级别", "to"),
    ("plan_name", "预案", "plan"), ("title", "标题", "title"), ("headline", "标题", "headline"), ("event", "事件", "event"),
    ("place", "地点", "place"), ("to_whom", "报告对象", "to whom"), ("by_whom", "报告人", "by whom"),
    ("decision", "决定", "decision"), ("reason", "原因", "reason"), ("note", "说明", "note"), ("text", "内容", "text"),
    ("comments", "意见", "comments"), ("version", "版本", "version"), ("total", "人数", "total"),
    ("due_at", "时限", "due"), ("late_by_s", "超时", "late by"),
    ("town_id", "乡镇(街道)", "town"), ("terminal", "广播终端", "terminal"),  # 应急广播 receipts
    ("households", "到户户数", "households"),
]
_DECISIONS = {"approve": "同意", "return": "退回", "accept": "接受", "reject": "不接受", "done": "完成"}


def summary(payload: Mapping[str, Any] | None, names: Callable[[str], str], local: Callable[[datetime | str], str],
            channels: Mapping[str, str], states: Mapping[str, str], levels: Mapping[str, str],
            lang: str = "zh") -> str:
    """A payload as one line of `label: value`, persons and units by name, times local, codes in words."""
    out = []
    i = 0 if lang != "en" else 1
    for key, zh, en in _KEYS:
        value = (payload or {}).get(key)
        if value in (None, "", [], {}) or key == "target" and (payload or {}).get("person_id"):
            continue  # a target's key (`dept_head@D01`) says no more than its person
        if key in ("person_id", "target", "unit_id", "unit", "assignee", "commander", "town_id"):
            shown = names(str(value).split("/")[-1]) if isinstance(value, str) else "、".join(names(str(v)) for v in value)
        elif key == "channel":
            shown = channels.get(str(value), str(value))
        elif key == "status":
            shown = states.get(str(value), str(value))
        elif key in ("level", "from_level", "to_level"):
            shown = levels.get(str(value), str(value))
        elif key == "due_at":
            shown = local(value)
        elif key == "late_by_s":
            shown = f"{int(float(value)) // 60}分钟" if lang != "en" else f"{int(float(value)) // 60} min"
        elif key == "decision":
            shown = _DECISIONS.get(str(value), str(value)) if lang != "en" else str(value)
        else:
            shown = str(value)
        out.append(f"{(zh, en)[i]}: {shown[:120]}")
    return ";".join(out) if lang != "en" else "; ".join(out)
