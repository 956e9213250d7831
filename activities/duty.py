"""Duty-day activities: the I/O of handovers, drills, 六问 spot checks and confirmation rounds.

`duty.flush` sends and records a batch of the escalation interpreter's actions for any
duty procedure (rendering each message per procedure, Chinese first); the others open,
record and close each procedure against the directory, the roster and the read models
in store/duty.py. Audit events go to the procedure's subject in the same transaction as
the read model, so the console and the audit trail agree.
"""
from __future__ import annotations

import asyncio
import random
import re
import statistics
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlmodel import Session, col, func, select
from temporalio import activity

from activities.delivery import Delivery, Outcome, deliver
from activities.escalation import Batch, Links, ack_links, send_and_record
from activities.reporting import duty_contacts
from config import get_settings
from definitions.schema.callout import CalloutPlan, Tier
from definitions.schema.common import Level, format_duration
from store.audit import NewEvent, append
from store.callouts import Callout, CalloutTarget
from store.db import session_scope
from store.directory import OrgUnit, Person, Position, Post, mask_mobile
from store.duty import (
    ContactCheck,
    DrillRun,
    FreshnessRound,
    Handover,
    SpotCheck,
    SpotCheckAnswer,
    SpotCheckFollowup,
    make_confirm_token,
    make_form_token,
)
from store.activations import Activation, ActivationItem
from store.incidents import Incident, IncidentDeadline
from store.review import Review, ReviewUnit
from store.links import reply_code
from store.roster import on_duty_in_role
from store.warnings import Warning
from workflows.activation import OPEN as ACTIVATION_OPEN
from workflows.callout import CalloutInput, NightHours, WarningInfo
from workflows.drill import DRILL_MARK, DrillReport, PrepareRequest, Prepared, ReportRequest
from workflows.common import Event
from workflows.duty import DutyFlush, FlushResult
from workflows.escalation import Contact, Send, Target
from workflows.freshness import CloseRequest, Opened as FreshnessOpened, OpenRequest as FreshnessOpen, RoundSummary, ShardInfo
from workflows.handover import HandoverNote, NoteItem, Opened as HandoverOpened, OpenRequest as HandoverOpen
from workflows.handover import RecordRequest as HandoverRecord
from workflows.spotcheck import Candidate, Opened as SpotOpened, OpenRequest as SpotOpen, Sampled
from workflows.spotcheck import RecordRequest as SpotRecord
from definitions.schema.duty import SpotCheckSettings

AUDIT_PREFIX = {"handover": "handover", "spotcheck": "spotcheck.call", "followup": "spotcheck.followup",
                "freshness": "freshness"}


def _now() -> datetime:
    return datetime.now(UTC)


def local(at: datetime | str | None, fmt: str = "%m月%d日%H:%M") -> str:
    if at is None:
        return "—"
    if isinstance(at, str):
        at = datetime.fromisoformat(at)
    return at.astimezone(ZoneInfo(get_settings().timezone)).strftime(fmt)


def _contact(p: Person | None) -> Contact | None:
    return Contact(person_id=p.id, name=p.name, mobile=p.mobile, im_id=p.im_id) if p else None


def _events(subject: str, workflow_id: str, run_id: str, events: list[Event]) -> list[NewEvent]:
    return [NewEvent(subject=subject, kind=e.kind, step_id=e.step_id, workflow_id=workflow_id, run_id=run_id,
                     actor=e.actor, channel=e.channel, at=e.at, payload=e.payload) for e in events]


def _round_of(key: str) -> int:
    m = re.search(r"/\d+\.(\d+)/", key)
    return int(m.group(1)) if m else 0


# ================================================================== rendering, per procedure


def _render_handover(send: Send, ctx: dict, code: str | None, link: str | None) -> tuple[str, str | None]:
    inc, out = (ctx.get("incoming") or {}).get("name", ""), (ctx.get("outgoing") or {}).get("name", "")
    due = local(ctx.get("due_at"), "%H:%M")
    answer = f"回复1确认(确认码{code})" + (f",或点击 {link}" if link else "") + "。"
    if send.purpose == "notify":
        body = (f"【交接班】{inc}:请于{due}前确认接班(交班值班长{out or '—'},交班记录{ctx.get('items', 0)}项,"
                f"请在值班台查看)。{answer.replace('确认', '确认接班', 1)}/ Shift handover: please take over by {due}.")
        return body, f"这里是区应急管理局值班室。{inc},请您于{due}前确认接班。确认接班请按1。"
    if send.purpose == "escalate":
        body = (f"【交接班升级】接班值班长{inc}未在{due}前确认接班,请您协调落实。{answer}"
                f"/ The incoming duty chief has not taken over by {due}; please see to it.")
        return body, f"这里是区应急管理局值班室。接班值班长{inc}未确认接班,请您协调落实。收到请按1。"
    if send.purpose == "inform":
        return f"【告知】接班值班长{inc}未确认接班({due}),请跟进。/ The incoming duty chief has not taken over.", None
    if send.purpose == "cancel":
        return f"【交接班】{inc}已接班,无需再处理。/ The shift has been taken over; nothing more to do.", None
    return f"【交接班】{send.about}", None


def _render_spotcheck(send: Send, ctx: dict, form: str | None) -> tuple[str, str | None]:
    title = ctx.get("title", "")
    if send.purpose == "notify" and send.channel == "voice":
        text = f"这里是区应急管理局值班室,现对“{title}”的落实情况进行六问抽查,每个问题请按1表示是,按2表示否。"
        return text, text
    if send.purpose == "notify":
        return (f"【六问抽查】{send.name}您好:针对“{title}”,请点击链接回答六个问题(约1分钟):{form} "
                f"/ Spot check after the warning: please answer six yes/no questions: {form}"), None
    if send.purpose == "inform":
        return (f"【六问抽查】{send.about}未接听、未作答,请电话抽查并在值班台代为记录。"
                f"/ Spot check: no answer from {send.about}; please call and record the answers."), None
    if send.purpose == "cancel":
        return "【六问抽查】本次抽查已结束,无需再作答。/ The spot check has ended.", None
    return f"【六问抽查】{title}", None


def _render_followup(send: Send, ctx: dict, code: str | None, link: str | None) -> tuple[str, str | None]:
    f = ctx.get("followup") or {}
    q = {x["id"]: x["zh"] for x in ctx.get("questions", [])}
    failed = "、".join(q.get(i, i).rstrip("??") for i in f.get("failed", []))
    town, about, due = f.get("town_name", ""), f.get("about_name", ""), local(f.get("due_at"))
    answer = f"回复1确认收到(确认码{code})" + (f"或点击 {link}" if link else "") + "。"
    if ctx.get("overdue"):
        return (f"【整改逾期】{town}六问整改已过时限({due})仍未完成:{about}({failed}),请督办。"
                f"/ Follow-up overdue in {town}."), None
    if send.purpose in ("notify", "escalate"):
        prefix = f"【升级】{f.get('responsible_name', '')}未确认六问整改,请您督促落实。" if send.purpose == "escalate" else ""
        text = (f"{prefix}【六问整改】{town}:{about}在六问抽查中回答“否”:{failed}。请于{due}前落实整改。")
        return (text + answer + f"/ Spot-check follow-up for {town}: fix by {local(f.get('due_at'), '%m-%d %H:%M')}.",
                text + "收到请按1。")
    if send.purpose == "inform":
        return f"【告知】{town}六问整改未确认:{about}({failed}),请跟进。/ Follow-up not acknowledged in {town}.", None
    if send.purpose == "cancel":
        return f"【六问整改】{town}:{about}已整改,无需再处理。/ The follow-up is resolved.", None
    return f"【六问整改】{town}", None


def _render_freshness(send: Send, ctx: dict, code: str | None, link: str | None) -> tuple[str, str | None]:
    deadline = ctx.get("deadline")
    due = local(deadline, "%m月%d日") if deadline else "—"  # due before this day (e.g. 04月20日)
    again = "【提醒】" if _round_of(send.key) > 0 else ""
    body = (f"{again}【通讯录核实】{send.name}您好:区应急值守通讯录登记您的手机为{mask_mobile(send.to)}。请于{due}前"
            f"点击链接确认:{link} ,或用本机回复1(确认码{code})。号码有变请联系区应急管理局。"
            f"/ Please confirm your contact details by {due}: {link}")
    return body, None


# ================================================================== flush (every procedure)


def _links(req: DutyFlush) -> Links:
    """(reply code, link) of a send that wants an answer: spot checks and confirmations have forms of their own."""
    settings = get_settings()
    key = settings.signing_key()
    usual = ack_links(req.subject)

    def links(send: Send) -> tuple[str | None, str | None]:
        if send.purpose not in ("notify", "escalate"):
            return None, None
        if req.procedure == "spotcheck":  # the six answers come by the form or the voice menu, never as "1"
            token = make_form_token(key, req.subject, send.person_id)
            return None, f"{settings.base_url}/spotcheck/{token}" if send.channel in ("sms", "im") else None
        if req.procedure == "freshness":
            token = make_confirm_token(key, req.subject, send.person_id)
            return reply_code(req.subject, send.person_id), f"{settings.base_url}/confirm/{token}"
        return usual(send)

    return links


def render(req: DutyFlush, send: Send, code: str | None, link: str | None) -> tuple[str, str | None]:
    if req.procedure == "handover":
        return _render_handover(send, req.context, code, link)
    if req.procedure == "spotcheck":
        return _render_spotcheck(send, req.context, link)
    if req.procedure == "followup":
        return _render_followup(send, req.context, code, link)
    return _render_freshness(send, req.context, code, link)


@activity.defn(name="duty.flush")
async def flush(req: DutyFlush) -> FlushResult:
    def save(s: Session, outcomes: dict[str, Outcome], now: datetime) -> None:
        view = req.context.get("view")
        if req.procedure == "handover" and view:
            _save_handover(s, view)
        elif req.procedure in ("spotcheck", "followup") and view:
            _save_spotcheck(s, view)
            _spotcheck_attempts(s, req, outcomes, now)
        elif req.procedure == "freshness":
            _freshness_progress(s, req, outcomes, now)

    batch = Batch(subject=req.subject, workflow_id=req.workflow_id, run_id=req.run_id, episode=req.episode,
                  kind=AUDIT_PREFIX[req.procedure], sends=req.sends, records=req.records,
                  meta={"procedure": req.procedure})
    return FlushResult.model_validate(await send_and_record(
        batch, lambda send, code, link: render(req, send, code, link),
        links=_links(req), save=save))


# ================================================================== shift handover


def _aware(v: Any) -> datetime | None:
    if v is None:
        return None
    return v if isinstance(v, datetime) else datetime.fromisoformat(v)


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


def handover_items(s: Session, at: datetime) -> list[NoteItem]:
    """What is open at the change: filled into the handover note."""
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
        for d in s.exec(select(IncidentDeadline).where(IncidentDeadline.incident_id == i.id,
                                                       col(IncidentDeadline.met_at).is_(None))
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
    return items


@activity.defn(name="duty.handover_open")
async def handover_open(req: HandoverOpen) -> HandoverOpened:
    def work() -> HandoverOpened:
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
                note = HandoverNote(items=handover_items(s, req.shift_at))
            return HandoverOpened(outgoing=_contact(s.get(Person, outgoing.person_id)) if outgoing else None,
                                  incoming=_contact(s.get(Person, incoming.person_id)) if incoming else None,
                                  leader=leader, others=others, note=note)

    return await asyncio.to_thread(work)


@activity.defn(name="duty.handover_record")
async def handover_record(req: HandoverRecord) -> None:
    def write() -> None:
        with session_scope() as s:
            _save_handover(s, req.view.model_dump(mode="json"))
            s.flush()
            append(s, _events(req.view.handover_id, req.workflow_id, req.run_id, req.events))

    await asyncio.to_thread(write)


# ================================================================== 六问 spot checks


def _save_spotcheck(s: Session, view: dict) -> None:
    row = s.get(SpotCheck, view["check_id"])
    if row is None:
        row = SpotCheck(id=view["check_id"], callout_id=view["callout_id"])
        s.add(row)
    row.title, row.level, row.questions = view.get("title", ""), view.get("level", ""), view.get("questions", [])
    if view["status"] != "waiting":
        row.status = view["status"]
    row.closed_at = _aware(view.get("closed_at"))
    row.updated_at = _now()
    s.flush()
    answers = {a.person_id: a for a in s.exec(select(SpotCheckAnswer).where(SpotCheckAnswer.check_id == row.id))}
    for p in view.get("persons", []):
        a = answers.get(p["person_id"])
        if a is None:
            a = SpotCheckAnswer(check_id=row.id, person_id=p["person_id"])
            s.add(a)
        a.name, a.label, a.village_id, a.town_id = p["name"], p.get("label", ""), p.get("village_id", ""), p.get("town_id", "")
        a.state, a.answers, a.channel = p["state"], p.get("answers"), p.get("channel")
        a.answered_at, a.answered_by, a.updated_at = _aware(p.get("answered_at")), p.get("answered_by"), _now()
    fus = {f.key: f for f in s.exec(select(SpotCheckFollowup).where(SpotCheckFollowup.check_id == row.id))}
    for f in view.get("followups", []):
        x = fus.get(f["key"])
        if x is None:
            x = SpotCheckFollowup(check_id=row.id, key=f["key"], town_id=f["town_id"], due_at=_aware(f["due_at"]),
                                  opened_at=_aware(f["opened_at"]))
            s.add(x)
        x.town_name, x.about_person_id, x.about_name, x.failed = (f.get("town_name", ""), f["about_person_id"],
                                                                 f.get("about_name", ""), f["failed"])
        x.responsible_id, x.responsible_name = f.get("responsible_id"), f.get("responsible_name", "")
        x.status, x.overdue, x.due_at = f["status"], f.get("overdue", False), _aware(f["due_at"])
        x.acknowledged_at, x.acknowledged_by, x.acknowledged_via = (_aware(f.get("acknowledged_at")),
                                                                    f.get("acknowledged_by"), f.get("acknowledged_via"))
        x.resolved_at, x.resolved_by, x.resolution = _aware(f.get("resolved_at")), f.get("resolved_by"), f.get("resolution")
        x.updated_at = _now()


def _spotcheck_attempts(s: Session, req: DutyFlush, outcomes: dict, now: datetime) -> None:
    if req.procedure != "spotcheck" or not req.sends:
        return
    rows = {a.person_id: a for a in s.exec(select(SpotCheckAnswer).where(SpotCheckAnswer.check_id == req.subject))}
    for send in req.sends:
        a = rows.get(send.target_key.removeprefix("q/"))
        if a is not None:
            a.attempts = [*a.attempts, {"key": send.key, "channel": send.channel, "purpose": send.purpose,
                                        "person_id": send.person_id, "status": outcomes[send.key].status,
                                        "at": now.isoformat()}]


def _holder(s: Session, unit_id: str, position: str) -> Post | None:
    return s.exec(select(Post).where(Post.org_unit_id == unit_id, Post.position_code == position)
                  .order_by(col(Post.id))).first()


@activity.defn(name="duty.spotcheck_open")
async def spotcheck_open(req: SpotOpen) -> SpotOpened:
    st = req.settings

    def work() -> SpotOpened:
        with session_scope() as s:
            c = s.get(Callout, req.callout_id)
            if c is None:
                return SpotOpened(status="skipped", reason=f"no call-out {req.callout_id!r}")
            title, level = c.title, c.level
            if c.drill:
                return SpotOpened(status="skipped", title=title, level=level,
                                  reason="a drill: 六问 spot checks follow real call-outs only")
            if c.level not in Level.__members__ or Level(c.level) < st.after_level:
                return SpotOpened(status="skipped", title=title, level=level,
                                  reason=f"level {c.level} is below {st.after_level.value}")
            candidates = list(s.exec(select(CalloutTarget).where(
                CalloutTarget.callout_id == c.id, col(CalloutTarget.position_code).in_(st.positions),
                col(CalloutTarget.acknowledged_at).is_not(None)).order_by(col(CalloutTarget.id))))
            seen: set[str] = set()
            candidates = [t for t in candidates if not (t.person_id in seen or seen.add(t.person_id))]
            if not candidates:
                return SpotOpened(status="skipped", title=title, level=level,
                                  reason=f"nobody in {', '.join(st.positions)} acknowledged the call-out")
            rng = random.Random(req.check_id)  # the same sample on a retry
            chosen = rng.sample(candidates, min(st.sample_size, len(candidates)))
            duty = duty_contacts(s, _now())
            positions = {p.code: p for p in s.exec(select(Position))}
            sampled: list[Sampled] = []
            for t in chosen:
                person = _contact(s.get(Person, t.person_id))
                if person is None:
                    continue
                village = s.get(OrgUnit, t.org_unit_id)
                town = s.get(OrgUnit, village.parent_id) if village and village.parent_id else None
                pos = positions.get(t.position_code)
                label = f"{village.name if village else t.org_unit_id}{pos.name_zh if pos else t.position_code} {person.name}"
                target = Target(key=f"q/{person.person_id}", tier="spotcheck", position=t.position_code,
                                org_unit=t.org_unit_id, label=label, person=person, others=duty, policy="call",
                                priority=30)
                follow = None
                post = _holder(s, town.id, st.follow_up.position) if town else None
                if post is not None and (head := _contact(s.get(Person, post.person_id))):
                    follow = Target(key=f"fu/{town.id}", tier="followup", position=st.follow_up.position,
                                    org_unit=town.id, label=f"{town.name} {head.name}", person=head,
                                    deputy=_contact(s.get(Person, post.deputy_id)) if post.deputy_id else None,
                                    superior=_contact(s.get(Person, post.superior_id)) if post.superior_id else None,
                                    others=duty, policy="follow_up", priority=20)
                sampled.append(Sampled(person_id=person.person_id, name=person.name, label=label,
                                       village_id=village.id if village else "", village_name=village.name if village else "",
                                       town_id=town.id if town else "", town_name=town.name if town else "",
                                       target=target, follow_up=follow))
            return SpotOpened(status="open", title=title, level=level, candidates=len(candidates), sampled=sampled)

    return await asyncio.to_thread(work)


@activity.defn(name="duty.spotcheck_record")
async def spotcheck_record(req: SpotRecord) -> None:
    def write() -> None:
        with session_scope() as s:
            _save_spotcheck(s, req.view.model_dump(mode="json"))
            s.flush()
            append(s, _events(req.view.check_id, req.workflow_id, req.run_id, req.events))

    await asyncio.to_thread(write)


@activity.defn(name="duty.spotcheck_candidates")
async def spotcheck_candidates(settings: SpotCheckSettings) -> list[Candidate]:
    def read() -> list[Candidate]:
        since = _now() - settings.look_back
        with session_scope(write=False) as s:
            done = set(s.exec(select(SpotCheck.callout_id)))
            out = []
            for c in s.exec(select(Callout).where(col(Callout.drill).is_(False), Callout.status != "running",
                                                  col(Callout.ended_at).is_not(None), Callout.ended_at >= since)
                            .order_by(col(Callout.ended_at))):
                if c.id in done or c.level not in Level.__members__ or Level(c.level) < settings.after_level:
                    continue
                out.append(Candidate(callout_id=c.id, ended_at=c.ended_at))
            return out

    return await asyncio.to_thread(read)


# ================================================================== contact freshness


def round_deadline(settings, at: datetime, tz: str) -> datetime:
    """The next `round_by` day (local midnight) after `at`: confirmations are due before it."""
    zone = ZoneInfo(tz)
    month, day = (int(x) for x in settings.round_by.split("-"))
    here = at.astimezone(zone)
    for year in (here.year, here.year + 1):
        due = datetime.combine(datetime(year, month, day).date(), time(0), tzinfo=zone)
        if due > here:
            return due.astimezone(UTC)
    raise AssertionError("unreachable")


@activity.defn(name="duty.freshness_open")
async def freshness_open(req: FreshnessOpen) -> FreshnessOpened:
    info = activity.info()
    settings = get_settings()
    deadline = req.deadline or round_deadline(req.settings, req.at, settings.timezone)

    def work() -> FreshnessOpened:
        with session_scope() as s:
            row = s.get(FreshnessRound, req.round_id)
            if row is None:
                row = FreshnessRound(id=req.round_id, year=deadline.astimezone(ZoneInfo(settings.timezone)).year,
                                     started_at=req.at, deadline=deadline)
                s.add(row)
                s.flush()
            have = set(s.exec(select(ContactCheck.person_id).where(ContactCheck.round_id == req.round_id)))
            people = [p for p in s.exec(select(Person).order_by(col(Person.id))) if p.mobile]
            for n, p in enumerate(people):  # id order: a retry puts everyone in the same shard again
                if p.id in have:
                    continue
                target = Target(key=f"p/{p.id}", tier="freshness", label=p.name,
                                person=Contact(person_id=p.id, name=p.name, mobile=p.mobile), policy="ask")
                s.add(ContactCheck(round_id=req.round_id, person_id=p.id, name=p.name,
                                   shard=n // req.settings.shard_size, spec=target.model_dump(mode="json")))
            s.flush()
            shards = dict(s.exec(select(ContactCheck.shard, func.count()).where(ContactCheck.round_id == req.round_id)
                                 .group_by(ContactCheck.shard)).all())
            row.total = sum(shards.values())
            info_shards = [ShardInfo(index=k, count=v) for k, v in sorted(shards.items())]
            append(s, [NewEvent(subject=req.round_id, kind="freshness.opened", step_id="opened",
                                workflow_id=info.workflow_id, run_id=info.workflow_run_id, actor=req.started_by,
                                at=req.at, payload={"deadline": deadline.isoformat(), "total": row.total,
                                                    "shards": [x.model_dump() for x in info_shards],
                                                    "settings_version": req.version})])
            return FreshnessOpened(deadline=deadline, total=row.total, shards=info_shards)

    return await asyncio.to_thread(work)


@activity.defn(name="duty.freshness_load")
async def freshness_load(round_id: str, shard: int) -> list[Target]:
    def read() -> list[Target]:
        with session_scope(write=False) as s:
            rows = s.exec(select(ContactCheck).where(ContactCheck.round_id == round_id, ContactCheck.shard == shard,
                                                     ContactCheck.state != "confirmed").order_by(col(ContactCheck.id)))
            return [Target.model_validate(r.spec) for r in rows]

    return await asyncio.to_thread(read)


def confirm_contact(s: Session, round_id: str, person_id: str, at: datetime, via: str) -> bool:
    """Record a confirmation (idempotent): the person's last-confirmed date and the round's row."""
    p = s.get(Person, person_id)
    if p is None:
        return False
    if p.contact_confirmed_at is None or p.contact_confirmed_at < at:
        p.contact_confirmed_at = at
    row = s.exec(select(ContactCheck).where(ContactCheck.round_id == round_id, ContactCheck.person_id == person_id)).first()
    if row is not None and row.state != "confirmed":
        row.state, row.confirmed_at, row.confirmed_via, row.updated_at = "confirmed", at, via, _now()
        if via in ("sms", "link"):
            row.bounced, row.last_error = False, None  # it reached them
    return True


def _freshness_progress(s: Session, req: DutyFlush, outcomes: dict, now: datetime) -> None:
    pids = {x.person_id for x in req.sends} | {r.person_id for r in req.records if r.person_id}
    if not pids:
        return
    rows = {r.person_id: r for r in s.exec(select(ContactCheck).where(
        ContactCheck.round_id == req.subject, col(ContactCheck.person_id).in_(list(pids))))}
    for send in req.sends:
        row = rows.get(send.person_id)
        if row is None:
            continue
        row.sends += 1
        row.asked_at = row.asked_at or now
        if row.state == "pending":
            row.state = "asked"
        if outcomes[send.key].status in ("failed", "opted_out"):
            row.bounced, row.last_error = True, outcomes[send.key].error or outcomes[send.key].status
        row.updated_at = now
    for r in req.records:
        row = rows.get(r.person_id or "")
        if r.kind == "ack":
            confirm_contact(s, req.subject, r.person_id or "", r.at, r.channel or "?")
        elif r.kind == "delivery" and row is not None:
            status = r.payload.get("status")
            if status in ("failed", "undelivered", "opted_out"):
                row.bounced, row.last_error = True, r.payload.get("detail") or status
            elif status == "delivered":
                row.bounced, row.last_error = False, None
            row.updated_at = now


@activity.defn(name="duty.freshness_close")
async def freshness_close(req: CloseRequest) -> RoundSummary:
    def work() -> RoundSummary:
        with session_scope() as s:
            rnd = s.get(FreshnessRound, req.round_id)
            rows = list(s.exec(select(ContactCheck).where(ContactCheck.round_id == req.round_id)))
            people = {p.id: p for p in s.exec(select(Person).where(col(Person.id).in_([r.person_id for r in rows])))}
            for r in rows:
                p = people.get(r.person_id)
                if r.state != "confirmed" and p and p.contact_confirmed_at and p.contact_confirmed_at >= rnd.started_at:
                    r.state, r.confirmed_at, r.confirmed_via = "confirmed", p.contact_confirmed_at, "late"
                elif r.state != "confirmed":
                    r.state = "unconfirmed"
                r.updated_at = _now()
            confirmed = [r.person_id for r in rows if r.state == "confirmed"]
            unconfirmed = sorted(r.person_id for r in rows if r.state == "unconfirmed")
            bounced = sorted(r.person_id for r in rows if r.bounced)
            rnd.status, rnd.closed_at = "closed", _now()
            rnd.confirmed, rnd.unconfirmed, rnd.bounced = len(confirmed), len(unconfirmed), len(bounced)
            append(s, [NewEvent(subject=req.round_id, kind="freshness.closed", step_id="closed",
                                workflow_id=req.workflow_id, run_id=req.run_id,
                                payload={"total": len(rows), "confirmed": len(confirmed), "unconfirmed": unconfirmed,
                                         "bounced": bounced, "counts": req.counts})])
            return RoundSummary(round_id=req.round_id, deadline=rnd.deadline, total=len(rows), confirmed=len(confirmed),
                                unconfirmed=unconfirmed, bounced=bounced)

    return await asyncio.to_thread(work)


# ================================================================== drills


class _Keep(dict):
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


@activity.defn(name="duty.drill_prepare")
async def drill_prepare(req: PrepareRequest) -> Prepared:
    d = req.drill

    def work() -> Prepared:
        with session_scope() as s:
            sample = d.sample
            kind = {"district": "district", "departments": "department", "towns": "town"}[sample.scope]
            units = list(s.exec(select(OrgUnit).where(OrgUnit.kind == kind).order_by(col(OrgUnit.id))))
            if sample.org_units:
                units = [u for u in units if u.id in sample.org_units]
            filled = {p.org_unit_id for p in s.exec(select(Post).where(col(Post.position_code).in_(sample.positions)))}
            units = [u for u in units if u.id in filled]
            rng = random.Random(req.run_id)  # the same sample on a retry
            chosen = sorted(rng.sample(units, min(sample.size, len(units))), key=lambda u: u.id)
            info = {"scope": sample.scope, "positions": sample.positions, "org_units": [u.id for u in chosen],
                    "names": [u.name for u in chosen], "drawn_from": len(units)}
            row = s.get(DrillRun, req.run_id)
            if row is None:
                row = DrillRun(id=req.run_id, drill_id=d.id, name=d.name_zh, counts_as=d.counts_as,
                               callout_id=f"{req.run_id}/callout", trigger="schedule" if req.trigger == "schedule" else "manual",
                               window_s=int(d.window.total_seconds()), sample=info, started_at=req.at)
                s.add(row)
            gap = None if chosen else f"no {kind} with {', '.join(sample.positions)} to draw from"
            if gap:
                row.status, row.ended_at = "reported", _now()
            append(s, [NewEvent(subject=req.run_id, kind="drill.started", step_id="started", workflow_id=req.run_id,
                                run_id=req.temporal_run_id, actor=req.trigger, at=req.at,
                                payload={"drill": d.id, "name": d.name_zh, "drill_marker": True, "sample": info,
                                         "callout_id": f"{req.run_id}/callout", "window_s": int(d.window.total_seconds()),
                                         "version": req.version, "gap": gap})])
        if gap:
            return Prepared(sample=info, gap=gap)
        fill = _Keep(name=f"{DRILL_MARK}{d.name_zh}", window=_zh_duration(d.window))
        tier = Tier(id="sample", name_zh=f"演练抽取:{'、'.join(info['names'])}"[:200], name_en="Drill sample",
                    scope="departments" if sample.scope == "departments" else
                    ("district" if sample.scope == "district" else "area_towns"),
                    positions=sample.positions, org_units=info["org_units"] if sample.scope == "departments" else None,
                    policy="drill", min_level=Level.blue)
        plan = CalloutPlan(id=f"drill_{d.id}", name_zh=d.name_zh, name_en=d.name_en, category="drill", events=["演练"],
                           min_level=Level.blue, message_zh=d.message_zh.format_map(fill),
                           message_en=d.message_en.format_map(_Keep(name=f"Drill: {d.name_en}", window=format_duration(d.window))),
                           voice_zh=d.voice_zh.format_map(fill), policies={"drill": d.policy}, tiers=[tier], summary_to=[],
                           cancel_message_zh="【演练结束】{event}演练已结束。")
        warning = WarningInfo(warning_id=req.run_id, identifier=req.run_id, level=d.level, category="drill", event="演练",
                              headline=f"{DRILL_MARK}{d.name_zh}", area_descs=info["names"],
                              town_ids=info["org_units"] if sample.scope == "towns" else [])
        callout = CalloutInput(callout_id=f"{req.run_id}/callout", warning=warning, plan=plan, plan_version=req.version,
                               night=NightHours(start="00:00", end="00:00"), drill=True)
        return Prepared(callout=callout, sample=info)

    return await asyncio.to_thread(work)


def _zh_duration(td: timedelta) -> str:
    s = int(td.total_seconds())
    if s % 3600 == 0:
        return f"{s // 3600}小时"
    if s % 60 == 0:
        return f"{s // 60}分钟"
    return f"{s}秒"


def drill_figures(targets: list[CalloutTarget], started: datetime, window: timedelta) -> dict[str, Any]:
    """Who answered within the window, counted from each target's first message."""
    responded, never, late, delays = 0, [], [], []
    for t in targets:
        first = min((datetime.fromisoformat(a["at"]) for a in t.attempts if a.get("purpose") == "notify"), default=started)
        if t.acknowledged_at is None:
            never.append({"person_id": t.person_id, "name": t.name, "org_unit": t.org_unit_id, "state": t.state})
            continue
        delay = max((t.acknowledged_at - first).total_seconds(), 0.0)
        delays.append(delay)
        if delay <= window.total_seconds():
            responded += 1
        else:
            late.append({"person_id": t.person_id, "name": t.name, "org_unit": t.org_unit_id, "after_s": round(delay)})
    total = len(targets)
    return {"total": total, "responded": responded, "acknowledged": len(delays),
            "rate": round(responded / total, 4) if total else None,
            "median_ack_s": statistics.median(delays) if delays else None, "never": never, "late": late}


@activity.defn(name="duty.drill_report")
async def drill_report(req: ReportRequest) -> DrillReport:
    d = req.drill

    def compute() -> tuple[DrillRun, dict, dict]:
        with session_scope() as s:
            row = s.get(DrillRun, req.run_id)
            c = s.get(Callout, req.callout_id)
            targets = list(s.exec(select(CalloutTarget).where(CalloutTarget.callout_id == req.callout_id)))
            fig = drill_figures(targets, c.started_at if c else row.started_at, d.window)
            if req.gap:
                fig["gap"] = req.gap
            row.total, row.responded, row.acknowledged, row.rate = (fig["total"], fig["responded"], fig["acknowledged"],
                                                                    fig["rate"])
            row.report, row.status, row.ended_at = fig, "reported", row.ended_at or _now()
            on_duty = duty_contacts(s, _now())
            people = {role: on_duty[role] for role in d.report_to if role in on_duty}
            return row, fig, people

    row, fig, people = await asyncio.to_thread(compute)
    window = _zh_duration(d.window)
    rate = f"{fig['rate']:.0%}" if fig["rate"] is not None else "—"
    names = "、".join(n["name"] for n in fig["never"][:10]) + (f"等{len(fig['never'])}人" if len(fig["never"]) > 10 else "")
    body = (f"{DRILL_MARK}【演练小结】{d.name_zh}:抽取{fig['total']}人,{window}内应答{fig['responded']}人(应答率{rate})"
            + (f";未应答:{names}" if fig["never"] else "") + (f";{req.gap}" if req.gap else "")
            + f"\n{DRILL_MARK} Drill result: {fig['responded']}/{fig['total']} answered within {format_duration(d.window)}.")
    outcomes = await deliver([Delivery(key=f"{req.run_id}/report/{c.person_id}", channel="sms", to=c.mobile or "", body=body,
                                       person_id=c.person_id, subject=req.run_id, drill=True,
                                       meta={"purpose": "summary", "procedure": "drill"})
                              for c in people.values() if c.mobile])

    def record() -> None:
        with session_scope() as s:
            append(s, [NewEvent(subject=req.run_id, kind="drill.reported", step_id="reported", workflow_id=req.run_id,
                                run_id=req.temporal_run_id,
                                payload={**fig, "drill": d.id, "drill_marker": True, "window_s": int(d.window.total_seconds()),
                                         "callout_id": req.callout_id,
                                         "sent_to": [{"role": r, "person_id": c.person_id} for r, c in people.items()],
                                         "statuses": [o.status for o in outcomes]})])

    await asyncio.to_thread(record)
    return DrillReport(run_id=req.run_id, drill_id=d.id, callout_id=req.callout_id, total=fig["total"],
                       responded=fig["responded"], acknowledged=fig["acknowledged"], rate=fig["rate"],
                       window_s=int(d.window.total_seconds()), never=fig["never"], late=fig["late"])


ALL = [flush, handover_open, handover_record, spotcheck_open, spotcheck_record, spotcheck_candidates, freshness_open,
       freshness_load, freshness_close, drill_prepare, drill_report]
