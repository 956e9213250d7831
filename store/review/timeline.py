"""The timeline of significant events of a case: each in one Chinese line (the event report's 大事记)."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from store.replay import EventLike
from store.review.common import _iso, _t
from workflows.kit.events import (
    Activation,
    ActivationStarted,
    Callout,
    CalloutEnded,
    CalloutStarted,
    CalloutSummary,
    CalloutUpdated,
    CancelRequested,
    ChainSettled,
    DeadlineStep,
    DispatchStep,
    HqConvened,
    IncidentReceived,
    ItemStep,
    LevelChanged,
    Payload,
    ReinforcementStep,
    Reporting,
    Proposal,
    Review,
    ReviewReport,
    ReviewStarted,
    SummaryStep,
    Terminated,
    Trigger,
    VerbalMade,
    WarningReceived,
    Warnings,
    WrittenReportStep,
)

LEVEL_ZH = {"blue": "蓝色", "yellow": "黄色", "orange": "橙色", "red": "红色", "I": "Ⅰ级", "II": "Ⅱ级", "III": "Ⅲ级",
            "IV": "Ⅳ级", "1": "Ⅰ级", "2": "Ⅱ级", "3": "Ⅲ级", "4": "Ⅳ级"}
STATUS_ZH = {"completed": "全部完成", "canceled": "已取消", "downgraded": "降级结束"}
REPORT_LABELS = {"verbal": "口头报告", "written": "书面报告"}


def _lv(value: Any) -> str:
    return LEVEL_ZH.get(str(value), str(value or "")) if value not in (None, "") else "—"


def _hm(value: Any) -> str:
    """A time limit as HH:MM in the configured time zone (the timeline's own times are rendered by the template)."""
    t = _t(value)
    if t is None:
        return "—"
    from zoneinfo import ZoneInfo

    from config import get_settings

    return t.astimezone(ZoneInfo(get_settings().timezone)).strftime("%m-%d %H:%M")


def _summary(p: dict[str, Any]) -> str:
    k = CalloutSummary.k
    return f"叫应汇总:{p.get(k.acknowledged, '?')}/{p.get(k.total, '?')}人已应答"


def _level_changed(c: Any) -> str:
    return (f"响应{'提升' if c.direction == 'up' else '调整'}:由{_lv(c.from_)}调整为{_lv(c.to)}"
            + (f"({c.reason})" if c.reason else ""))


def _summary_submitted(s: Any) -> str:
    return f"{s.unit}报送书面总结" if s.first else f"{s.unit}修改书面总结(第{s.version}版)"


def _settled(c: Any) -> str:
    why = "应急响应终止" if str(c.by or "").startswith("activation/") else "复盘报告签发"
    omitted, lapsed = len(c.omitted or []), len(c.lapsed or [])
    counts = "、".join(x for x in (f"漏报{omitted}项" if omitted else "", f"未报(已终止){lapsed}项" if lapsed else "") if x)
    if not c.ended:
        return f"{why},信息报送待报终报" + (f"({counts})" if counts else "")
    return f"{why},信息报送随之办结" + (f":{counts}" if counts else "")


# kind -> (the payload model it is read through, or None for the raw payload; its line)
SIMPLE: dict[str, tuple[type[Payload] | None, Callable[[Any], str]]] = {
    Warnings.RECEIVED: (WarningReceived, lambda w: f"收到预警:{w.headline or w.event or ''}({_lv(w.level)})"),
    Warnings.UPDATE: (WarningReceived, lambda w: f"预警更新:{w.headline or ''}({_lv(w.level)})"),
    Warnings.CANCEL: (WarningReceived, lambda w: "预警解除"),
    Callout.STARTED: (CalloutStarted, lambda s: f"启动叫应({_lv(s.level)}预警)"),
    Callout.UPDATED: (CalloutUpdated, lambda u: f"预警等级由{_lv(u.from_level)}调整为{_lv(u.to_level)},叫应随之调整"),
    Callout.CANCEL_REQUESTED: (CancelRequested, lambda c: f"叫应取消:{c.reason or ''}"),
    Callout.SUMMARY: (None, _summary),
    Callout.ENDED: (CalloutEnded, lambda e: f"叫应结束({STATUS_ZH.get(e.status, e.status)})"),
    Reporting.RECEIVED: (IncidentReceived, lambda r: f"接报:{r.title or ''}(来源{r.source or '—'})"),
    Reporting.VERBAL_MADE: (VerbalMade, lambda v: f"口头报告{v.to_whom or ''}" + ("" if v.on_time else "(迟报)")),
    Reporting.TRIGGER: (Trigger, lambda t: f"触发:{t.name or t.trigger}"),
    Reporting.CLOSED: (None, lambda p: "信息报送办结" if p.get("settled_by") else "信息报送以终报结束"),
    Reporting.SETTLED: (ChainSettled, _settled),
    Activation.STARTED: (ActivationStarted, lambda s: f"启动{_lv(s.level)}应急响应"
                                                      + (f"({s.plan_name or s.plan})" if s.plan else "")),
    Activation.LEVEL_CHANGED: (LevelChanged, _level_changed),
    Activation.TERMINATED: (Terminated, lambda t: f"终止应急响应({t.reason or ''})"),
    Activation.REVIEW_STARTED: (None, lambda p: "响应终止,启动复盘总结"),
    Activation.DISPATCH_APPROVED: (DispatchStep, lambda d: f"批准力量调度方案{d.seq},下达出动指令"),
    Activation.DISPATCH_RETURNED: (DispatchStep, lambda d: f"退回力量调度方案{d.seq}"),
    Activation.REINFORCEMENT_REQUESTED: (ReinforcementStep, lambda r: f"向{r.to or '上级'}请求增援:{r.detail or ''}"),
    Activation.REINFORCEMENT_ANSWERED: (ReinforcementStep,
                                        lambda r: f"增援请求{r.seq}获答复:{r.detail or r.decision}"),
    Activation.REINFORCEMENT_OVERDUE: (ReinforcementStep, lambda r: f"增援请求{r.seq}超过答复时限,催办"),
    Proposal.MADE: (None, lambda p: f"预警即启动条件:建议启动{_lv(p.get('level'))}应急响应"
                                    + (f"(《{p['plan_name']}》)" if p.get("plan_name") else "")
                                    + (f",报带班领导{p['leader']['name']}决定" if p.get("leader") else "")),
    Proposal.ESCALATED: (None, lambda p: f"响应建议未获决定,升级至{p.get('name') or '上级'}"),
    Proposal.ACCEPTED: (None, lambda p: f"同意响应建议,启动{_lv(p.get('level'))}应急响应"),
    Proposal.DECLINED: (None, lambda p: f"不同意响应建议:{p.get('reason') or ''}"),
    Proposal.EXPIRED: (None, lambda p: "响应建议逾时未决定,撤回" if p.get("reason") == "lapsed" else "预警解除或失效,响应建议撤回"),
    Proposal.RAISED: (None, lambda p: f"预警升级,响应建议由{_lv(p.get('from_level'))}提高为{_lv(p.get('to_level'))}"),
    Review.STARTED: (ReviewStarted, lambda r: f"启动复盘总结,请{len(r.units or [])}个参与单位报送书面总结"),
    Review.SUMMARY_SUBMITTED: (SummaryStep, _summary_submitted),
    Review.SUMMARY_LATE: (SummaryStep, lambda s: f"{s.unit}书面总结{s.mark}"),
    Review.SUMMARY_OVERDUE: (SummaryStep, lambda s: f"{s.unit}书面总结逾期未报"),
    Review.REPORT_COMPILED: (ReviewReport, lambda r: f"汇编初步事件报告(第{r.version}版)"),
    Review.REPORT_RETURNED: (ReviewReport, lambda r: f"带班领导退回事件报告:{r.comments or ''}"),
    Review.REPORT_SIGNED: (ReviewReport, lambda r: f"带班领导签发事件报告(第{r.version}版)"),
}


def _report_line(what: str, verb: str, p: dict[str, Any], who: Callable[[str], str]) -> str | None:
    """`report.<what>.<verb>`: a written report submitted or approved, a time limit met late, overdue, omitted."""
    w, d = WrittenReportStep.read(p), DeadlineStep.read(p)
    label = w.label or REPORT_LABELS.get(what, what)
    if verb == "submitted":
        return f"{label}报出(审核签发:{who(w.approved_by) if w.approved_by else '—'})"
    if verb == "approved":
        return f"{label}第{w.version}稿审核通过"
    if verb == "late":
        return f"{label}{d.mark or '迟报'}"
    if verb == "overdue":
        return f"{label}超过时限未报,督促值班长"
    if verb == "omitted":
        return f"{label}漏报"
    if verb == "lapsed":
        return f"{label}未报(已终止)"
    return None


def _item_line(item_kind: str, verb: str, p: Any, labels: dict[str, str], who: Callable[[str], str]) -> str | None:
    """A task's or directive's opening, completion, return, overdue or late mark."""
    zh = "任务" if item_kind == "task" else "指令"
    ident = str(p.item)
    label = p.title or labels.get(ident) or ident
    labels[ident] = label
    if verb in ("opened", "issued"):
        return f"{zh}{ident}下达:{label}(时限{_hm(p.due_at)},{who(p.assignee) if p.assignee else '—'})"
    if verb == "feedback" and p.kind == "done":
        return f"{zh}{ident}反馈完成:{label}" + ("(超过时限)" if p.after_due else "")
    if verb == "accepted":
        return f"{zh}{ident}办结:{label}"
    if verb == "returned":
        return f"{zh}{ident}完成反馈被退回:{p.comments or ''}"
    if verb == "overdue":
        return f"{zh}{ident}超过时限未完成,督办:{label}"
    if verb == "late":
        return f"{zh}{ident}{p.mark or '逾期办结'}:{label}"
    return None


def describe(ev: EventLike, labels: dict[str, str] | None = None, who: Callable[[str], str] = str) -> str | None:
    """A significant event in one Chinese line; None for the many small ones (sends, timeouts…).

    `labels` remembers the names of tasks and directives between events (a completion may not repeat it);
    `who` names a person or a unit from its id."""
    k, p = ev.kind, ev.payload
    labels = labels if labels is not None else {}
    if k in SIMPLE:
        model, line = SIMPLE[k]
        return line(model.read(p) if model is not None else p)
    if k.startswith("report.") and k.count(".") == 2:
        _, what, verb = k.split(".")
        text = _report_line(what, verb, p, who)
        if text is not None:
            return text
    parts = k.split(".")
    if len(parts) == 3 and parts[0] == "activation" and parts[1] in Activation.ITEMS and p.get(ItemStep.k.item):
        return _item_line(parts[1], parts[2], ItemStep.read(p), labels, who)
    if k == Activation.HQ_CONVENED:
        h = HqConvened.read(p)
        return f"{_lv(h.level)}响应:召集指挥部{len(h.seats or {})}个岗位、{len(h.groups or [])}个工作组"
    return None


def timeline(by_subject: dict[str, list[EventLike]], limit: int = 400,
             names: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """The significant events of every subject in time order, one Chinese line each, persons and units by name."""
    names = names or {}
    rows = []
    for subject, events in by_subject.items():
        labels: dict[str, str] = {}
        for ev in events:
            text = describe(ev, labels, lambda ident: names.get(ident, ident))
            if text:
                rows.append({"at": ev.at, "subject": subject, "kind": ev.kind, "actor": ev.actor, "text": text})
    rows.sort(key=lambda r: (r["at"], r["subject"]))
    if len(rows) > limit:
        rows = rows[:limit // 2] + [{"at": rows[limit // 2]["at"], "subject": "", "kind": "…", "actor": "",
                                     "text": f"(其间{len(rows) - limit}条从略,见案卷审计记录)"}] + rows[-(limit // 2):]
    return [{**r, "at": _iso(r["at"])} for r in rows]
