"""Shift handover 交接班: the read model, the handover note (what is open at the change), opening and recording."""
from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlmodel import Session, col, select
from temporalio import activity

from activities.common import audit_events, duty_contacts, local, write
from activities.common import aware as _aware
from activities.common import contact as _contact
from activities.common import now as _now
from config import get_settings
from definitions.loader import cached_library
from definitions.schema.common import Level
from definitions.schema.duty import DutySettings
from store.activations import Activation, ActivationItem
from store.callouts import Callout, CalloutTarget
from store.db import session_scope
from store.directory import Person
from store.drillweeks import below_text, recent_weeks
from store.duty import DrillRun, Handover, SpotCheckFollowup
from store.incidents import Incident, IncidentDeadline, open_deadlines
from store.review import Review, ReviewUnit
from store.roster import on_duty_in_role
from store.warnings import Warning
from workflows.activation import OPEN as ACTIVATION_OPEN
from workflows.drill import DRILL_MARK
from workflows.handover import HandoverNote, NoteItem, Opened as HandoverOpened, OpenRequest as HandoverOpen
from workflows.kit import names
from workflows.handover import RecordRequest as HandoverRecord


def _save_handover(s: Session, view: dict) -> Handover:
    row = s.get(Handover, view["handover_id"])
    if row is None:
        row = Handover(id=view["handover_id"], shift_at=_aware(view["shift_at"]))
        s.add(row)
    out, inc, lead = view.get("outgoing") or {}, view.get("incoming") or {}, view.get("leader") or {}
    row.outgoing_id, row.outgoing_name = out.get("person_id"), out.get("name", "")
    row.incoming_id, row.incoming_name = inc.get("person_id"), inc.get("name", "")
    row.leader_id, row.leader_name = lead.get("person_id"), lead.get("name", "")
    if view["status"] != "opening":
        row.status = view["status"]
    row.note = view.get("note") or {}
    row.due_at = _aware(view.get("due_at"))
    for f in ("handed_over_at", "taken_over_at", "escalated_at", "leader_ack_at", "closed_at"):
        setattr(row, f, _aware(view.get(f)))
    row.taken_over_by, row.taken_over_via, row.leader_ack_by = (view.get("taken_over_by"), view.get("taken_over_via"),
                                                                 view.get("leader_ack_by"))
    row.updated_at = _now()
    return row


def drill_week_items(s: Session, at: datetime, duty: DutySettings) -> list[NoteItem]:
    """The weekly drill count (store/drillweeks.py) in the note: the last complete week if it ended below the
    programme's minimum, and this week so far if it has not reached it yet."""
    weeks = recent_weeks(s, duty, at, ZoneInfo(get_settings().timezone))
    items = []
    for key, lead in (("last", "上周演练未达最低要求"), ("this", "本周演练截至交班尚未达标")):
        wk = weeks[key]
        if wk["below"]:
            items.append(NoteItem(kind="drill", ref=f"drill-week/{wk['week']}",
                                  text=f"{lead}({wk['label_zh']}):{below_text(wk)}"))
    return items


def handover_items(s: Session, at: datetime, duty: DutySettings | None = None) -> list[NoteItem]:
    """What is open at the change: filled into the handover note (with the duty definitions, the weekly drill
    count where a week is below its minimum)."""
    items: list[NoteItem] = []
    for w in s.exec(select(Warning).where(Warning.received_at > at - timedelta(days=2), Warning.msg_type == "Alert")
                    .order_by(col(Warning.received_at))):
        if w.expires_at is not None and w.expires_at <= at:
            continue
        level = Level(w.level).zh if w.level in Level.__members__ else (w.level or "")
        items.append(NoteItem(kind="warning", ref=w.id, due_at=w.expires_at,
                              text=f"{level}{w.event or ''}预警:{w.headline or w.identifier}"
                                   + (f"(至{local(w.expires_at)})" if w.expires_at else "")))
    for c in s.exec(select(Callout).where(Callout.status == "running", col(Callout.drill).is_(False))
                    .order_by(col(Callout.started_at))):
        n = s.exec(select(CalloutTarget.state).where(CalloutTarget.callout_id == c.id)).all()
        items.append(NoteItem(kind="callout", ref=c.id,
                              text=f"叫应进行中:{c.title}(已应答{sum(1 for x in n if x == 'acknowledged')}/{len(n)})"))
    for i in s.exec(select(Incident).where(Incident.status == "open").order_by(col(Incident.received_at))):
        items.append(NoteItem(kind="incident", ref=i.id, text=f"事件处置中:{i.title}({i.severity}级,接报{local(i.received_at)})"))
        for d in s.exec(select(IncidentDeadline).where(IncidentDeadline.incident_id == i.id, open_deadlines())
                        .order_by(col(IncidentDeadline.due_at))):
            late = "(已超时)" if d.due_at < at else ""
            items.append(NoteItem(kind="deadline", ref=f"{i.id}/{d.key}", due_at=d.due_at,
                                  text=f"{i.title}:{d.label}须于{local(d.due_at)}前报出{late}"))
    for a in s.exec(select(Activation).where(Activation.status == "active").order_by(col(Activation.activated_at))):
        items.append(NoteItem(kind="activation", ref=a.id,
                              text=f"应急响应中:{a.plan_name}{a.view.get('level_name') or a.level}(事件{a.incident_id})"))
        for it in s.exec(select(ActivationItem).where(ActivationItem.activation_id == a.id,
                                                      col(ActivationItem.state).in_([*ACTIVATION_OPEN, "reported"]))
                         .order_by(col(ActivationItem.due_at))):
            late = "(已超时)" if it.due_at < at else ""
            items.append(NoteItem(kind="deadline", ref=f"{a.id}/{it.item_id}", due_at=it.due_at,
                                  text=f"{a.plan_name}:{it.title}({it.assignee})须于{local(it.due_at)}前办结{late}"))
    for r in s.exec(select(Review).where(col(Review.status).not_in(["sealed"])).order_by(col(Review.started_at))):
        waiting = s.exec(select(ReviewUnit).where(ReviewUnit.incident_id == r.incident_id,
                                                  col(ReviewUnit.state).in_(["requested", "overdue"]))).all()
        due = min((u.due_at for u in waiting), default=None)
        items.append(NoteItem(kind="other", ref=r.subject, due_at=due,
                              text=f"复盘进行中:{r.title or r.incident_id}(待交总结{len(waiting)}份)"))
    for f in s.exec(select(SpotCheckFollowup).where(col(SpotCheckFollowup.status).in_(["open", "acknowledged"]))
                    .order_by(col(SpotCheckFollowup.due_at))):
        items.append(NoteItem(kind="followup", ref=f"{f.check_id}/{f.key}", due_at=f.due_at,
                              text=f"{f.town_name}六问整改:{f.about_name},须于{local(f.due_at)}前完成"))
    for r in s.exec(select(DrillRun).where(DrillRun.status == "running")):
        items.append(NoteItem(kind="drill", ref=r.id, text=f"{DRILL_MARK}{r.name}进行中"))
    if duty is not None:
        items += drill_week_items(s, at, duty)
    return items


@activity.defn(name=names.Duty.HANDOVER_OPEN)
async def handover_open(req: HandoverOpen) -> HandoverOpened:
    def work() -> HandoverOpened:
        duty = cached_library(get_settings().definitions_dir).duty()  # None: definitions unusable, no drill count
        with session_scope() as s:
            before, after = req.shift_at - timedelta(minutes=1), req.shift_at + timedelta(minutes=1)
            outgoing = next(iter(on_duty_in_role(s, before, "duty_chief")), None)
            incoming = next(iter(on_duty_in_role(s, after, "duty_chief")), None)
            others = duty_contacts(s, after)
            leader = others.get("leading_leader") or duty_contacts(s, before).get("leading_leader")
            if leader is not None:
                others["leading_leader"] = leader
            row = s.get(Handover, req.handover_id)
            if row is not None and row.note.get("items") is not None:  # a retry: the note stands
                note = HandoverNote.model_validate(row.note)
            else:
                note = HandoverNote(items=handover_items(s, req.shift_at, duty))
            return HandoverOpened(outgoing=_contact(s.get(Person, outgoing.person_id)) if outgoing else None,
                                  incoming=_contact(s.get(Person, incoming.person_id)) if incoming else None,
                                  leader=leader, others=others, note=note)

    return await asyncio.to_thread(work)


@activity.defn(name=names.Duty.HANDOVER_RECORD)
async def handover_record(req: HandoverRecord) -> None:
    await write(lambda s: _save_handover(s, req.view.model_dump(mode="json")),
                audit_events(req.view.handover_id, req.workflow_id, req.run_id, req.events))
