"""An activation's audit trail as PlanActivationWorkflow writes it (kinds, step ids and payload keys of
workflows/activation/ and activities/activation.py), for the unit tests of the replay and the statistics.

tests/workflows/test_activation_trail.py checks the same readers against the events a real activation writes.

Minutes from T0: Ⅳ级 at 0 (task T-patrol due +30 needing feedback, task T-stock due +60 needing none);
directive D1 at +5 due +20: acknowledged +6, reported done +10, returned +12, overdue +20 (the assignee
called, escalated to the superior at +30), done again +25, accepted +26, 5 minutes late. T-patrol acknowledged
+3, overdue +30, done +50, accepted +52 (20 minutes late). Up to Ⅲ级 at +40 (task T-road due +100 opens).
T-stock acknowledged at +45 (done: it needs no feedback). The city asked for teams at +60 (answer due +180),
answered at +70. Terminated at +90: T-road closed before its limit; the review starts.
"""
from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from store.replay import Row

T0 = datetime(2026, 7, 1, 3, 0, tzinfo=UTC)
WID = "activation-INC-1-flood_control"
SUBJECT = "activation/INC-1-flood_control"
CMD_IV, CMD_III, LEAD = "p-D01.head", "p-deputy_head", "p-D09.head"


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def trail(start: datetime = T0) -> list[Row]:
    """The trail; `start` moves it in time (event times and the time limits in the payloads alike)."""
    rows: list[Row] = []

    def at(minutes: float) -> datetime:
        return start + timedelta(minutes=minutes)

    def ev(kind_: str, minutes: float, step: str, actor: str = "system", channel: str | None = None, **p: Any) -> None:
        rows.append(Row(len(rows) + 1, kind_, at(minutes), actor, channel, step, WID, p))

    def item(kind: str, ident: str, minutes: float, title: str, due: float, feedback: bool = True,
             group: str | None = None, by: str = CMD_IV) -> None:
        ev(f"activation.{kind}.{'opened' if kind == 'task' else 'issued'}", minutes, f"item/{ident}/opened", by,
           item=ident, title=title, text=title, group=group, unit=None, assignee=f"组长 {LEAD}",
           assignee_person=LEAD, due_at=at(due).isoformat(), feedback_required=feedback)
        ev("activation.notice.sent", minutes, f"send/notice/{ident}/{ident}/0.0/{LEAD}/sms", channel="sms",
           episode=f"notice/{ident}", label=title, target=ident, person_id=LEAD, name="消防大队长", purpose="notify",
           to="+86139****0001", status="sent", error=None, outbox_id=1)

    def ack(ident: str, minutes: float, episode: str) -> None:
        ev(f"activation.{episode.split('/')[0]}.ack", minutes, f"{episode}/{ident}/ack/{minutes}", LEAD, "sms",
           episode=episode, label=ident, target=ident, person_id=LEAD, state="acknowledged")

    ev("activation.started", 0, "started", CMD_IV, activation_id="INC-1-flood_control", incident_id="INC-1",
       incident_title="青溪路内涝", town_id="330110001", level="IV", reason="暴雨橙色预警,内涝", activated_role="commander",
       plan="flood_control", plan_name="青溪区防汛应急预案", plan_version="abc123", level_name="Ⅳ级响应(一般)",
       start_condition="…", commander="应急管理局局长")
    ev("activation.hq.convened", 0, "level/0/convened", level="IV",
       seats={"dept_head@D01": ["指挥长"], "dept_head@D09": ["抢险救援组组长"]}, groups=["rescue"], gaps=[])
    ev("activation.convene.sent", 0, f"send/convene/0/dept_head@D01/0.0/{CMD_IV}/voice", channel="voice",
       episode="convene/0", label="Ⅳ级响应 指挥部", target="dept_head@D01", person_id=CMD_IV, name="局长",
       purpose="notify", to="+86139****0002", status="sent", error=None, outbox_id=2)
    item("task", "T-patrol", 0, "巡堤查险", 30, group="rescue")
    item("task", "T-stock", 0, "防汛物资前置", 60, feedback=False, group="rescue")
    ev("activation.convene.ack", 2, "convene/0/dept_head@D01/ack", CMD_IV, "voice", episode="convene/0",
       label="Ⅳ级响应 指挥部", target="dept_head@D01", person_id=CMD_IV, state="acknowledged")
    ack("T-patrol", 3, "notice/T-patrol")
    item("directive", "D1", 5, "加密巡查", 20)
    ack("D1", 6, "notice/D1")
    ev("activation.directive.feedback", 10, "item/D1/feedback/1", LEAD, item="D1", kind="done", text="已巡查",
       on_behalf=False, note="", due_at=at(20).isoformat(), state="reported", after_due=False)
    ev("activation.directive.returned", 12, "item/D1/review/1", CMD_IV, item="D1", comments="缺照片",
       due_at=at(20).isoformat(), late_by_s=None)
    ev("activation.directive.overdue", 20, "item/D1/overdue/0", item="D1", title="加密巡查", due_at=at(20).isoformat(),
       state="returned", assignee="组长")
    ev("activation.overdue.sent", 20, f"send/overdue/D1/0/overdue/D1/0.0/{LEAD}/voice", channel="voice",
       episode="overdue/D1/0", label="督办 指令D1", target="overdue/D1", person_id=LEAD, name="消防大队长",
       purpose="notify", to="+86139****0001", status="sent", error=None, outbox_id=3)
    ev("activation.directive.feedback", 25, "item/D1/feedback/2", LEAD, item="D1", kind="done", text="补报照片",
       on_behalf=False, note="", due_at=at(20).isoformat(), state="reported", after_due=True)
    ev("activation.overdue.canceled", 25, "overdue/D1/0/overdue/D1/canceled", episode="overdue/D1/0",
       label="督办 指令D1", target="overdue/D1", person_id=LEAD, state="canceled")
    ev("activation.directive.accepted", 26, "item/D1/review/2", CMD_IV, item="D1", comments="",
       due_at=at(20).isoformat(), late_by_s=300)
    ev("activation.directive.late", 26, "item/D1/late", item="D1", title="加密巡查", due_at=at(20).isoformat(),
       reported_at=at(25).isoformat(), late_by_s=300, late_by_min=5, mark="逾期5分钟办结")
    ev("activation.task.overdue", 30, "item/T-patrol/overdue/0", item="T-patrol", title="巡堤查险",
       due_at=at(30).isoformat(), state="acknowledged", assignee="组长")
    ev("activation.overdue.escalated", 30, "overdue/T-patrol/0/overdue/T-patrol/escalated", episode="overdue/T-patrol/0",
       label="督办 任务T-patrol", target="overdue/T-patrol", person_id="p-deputy_head", state="escalated")
    ev("activation.level.changed", 40, "level/1", CMD_III, **{"from": "IV", "to": "III"}, direction="up",
       reason="险情扩大")
    ev("activation.hq.convened", 40, "level/1/convened", level="III",
       seats={"deputy_district_head": ["指挥长"], "dept_head@D01": ["副指挥长"]}, groups=["rescue", "traffic"], gaps=[])
    item("task", "T-road", 40, "积水路段交通管制", 100, group="traffic", by=CMD_III)
    ack("T-stock", 45, "notice/T-stock")
    ev("activation.task.feedback", 50, "item/T-patrol/feedback/1", LEAD, item="T-patrol", kind="done", text="已巡查",
       on_behalf=False, note="", due_at=at(30).isoformat(), state="reported", after_due=True)
    ev("activation.task.accepted", 52, "item/T-patrol/review/1", CMD_III, item="T-patrol", comments="",
       due_at=at(30).isoformat(), late_by_s=1200)
    ev("activation.task.late", 52, "item/T-patrol/late", item="T-patrol", title="巡堤查险", due_at=at(30).isoformat(),
       reported_at=at(50).isoformat(), late_by_s=1200, late_by_min=20, mark="逾期20分钟办结")
    ev("activation.reinforcement.requested", 60, "reinforcement/1/requested", CMD_III, seq=1, kind="teams",
       detail="抢险队2支", quantity=None, to="市应急管理局指挥中心", due_at=at(180).isoformat())
    ev("activation.reinforcement.answered", 70, "reinforcement/1/answered", "p-duty_chief", seq=1, decision="approve",
       detail="派2支", by_whom="市应急管理局", late_by_s=0)
    ev("activation.task.closed", 90, "item/T-road/closed", item="T-road", title="积水路段交通管制", reason="响应终止")
    ev("activation.terminated", 90, "terminated", CMD_III, reason="险情解除", level="III", closed_items=["T-road"],
       duration_s=5400)
    ev("activation.review.started", 90, "review", CMD_III, workflow_id="review-INC-1",
       workflow_type="PostEventReviewWorkflow", incident_id="INC-1", activation_id=WID, started_by=CMD_III,
       units=["D01", "D09"])
    return rows
