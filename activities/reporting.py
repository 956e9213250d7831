"""Incident reporting activities: the audit trail and read model, reminders, who to call, sending.

The workflow hands every write the chain's latest state (`ChainView`); the rows in
store/incidents.py are upserted from it in the same transaction as the audit events,
so the compliance figures of `GET /api/incidents/{id}` and the audit trail agree.
"""
from __future__ import annotations

from datetime import datetime

from sqlmodel import Session, col, select
from temporalio import activity
from temporalio.service import RPCError, RPCStatusCode

from activities.common import audit_events, duty_contacts, local, on_duty_as, read, sms_each, write
from activities.common import now as _now
from activities.common import contact as _contact
from activities.delivery import REFUSED, Outcome, deliver
from activities.escalation import Batch, answer_text, send_and_record
from definitions.schema.reporting import SECTOR_LEADER, Recipient
from store import upward as city_posts
from store.audit import NewEvent, append
from store.directory import OrgUnit, Person, Post, mask_mobile
from store.incidents import Incident, IncidentDeadline, IncidentReport, ReportReceipt, ReportVersion
from workflows.subjects import incident_subject
from workflows.escalation import Contact, Record, Target
from workflows.kit import names
from workflows.reporting import (
    ChainView,
    FlushRequest,
    FlushResult,
    RecordRequest,
    RemindRequest,
    SettleIn,
    SettleRequest,
    SettleResult,
    TargetsRequest,
    TargetsResult,
    WrittenReport,
)

AUDIT_PREFIX = {"overdue": "report.escalation", "receipts": "report.receipt", "trigger": "incident.call"}


# ------------------------------------------------------------------ the read model


def save_view(s: Session, req: RecordRequest) -> Incident:
    """Upsert the incident, its deadlines, reports and versions from the workflow's state."""
    i, v = req.incident, req.view
    row = s.get(Incident, i.incident_id)
    if row is None:
        row = Incident(id=i.incident_id, workflow_id=req.workflow_id, title=i.title, received_at=v.received_at,
                       source=i.source, category=i.category, subtype=i.subtype, town_id=i.town_id, place=i.place,
                       summary=i.summary, reporting_unit=i.reporting_unit, reporting_unit_id=i.reporting_unit_id,
                       reporter=i.reporter, reporter_phone=i.reporter_phone, rules_id=req.rules_id,
                       rules_version=req.rules_version, created_by=i.created_by)
        s.add(row)
    row.severity = v.severity.value
    row.deaths, row.injured, row.missing, row.trapped = (v.casualties.deaths, v.casualties.injured, v.casualties.missing,
                                                         v.casualties.trapped)
    row.figures = v.figures.model_dump(mode="json", exclude_none=True) if v.figures else None
    row.status, row.closed_at, row.updated_at = v.status, v.closed_at, _now()
    row.verbal = v.verbal.model_dump(mode="json") if v.verbal else None
    row.triggers = [t.model_dump(mode="json") for t in v.triggers]
    row.occurred_at, row.known_at = i.occurred_at, i.known_at
    row.vertical = v.vertical.model_dump(mode="json") if v.vertical else None
    u = v.unit_report
    row.reported_at = u.reported_at if u else i.reported_at
    row.unit_due_at, row.unit_late_by_s = (u.due_at, u.late_by_s) if u else (None, None)
    s.flush()
    deadlines = {d.key: d for d in s.exec(select(IncidentDeadline).where(IncidentDeadline.incident_id == row.id))}
    for d in v.deadlines:
        dl = deadlines.get(d.key) or IncidentDeadline(incident_id=row.id, key=d.key, label=d.label, due_at=d.due_at)
        dl.label, dl.due_at, dl.met_at, dl.met_by, dl.late_by_s = d.label, d.due_at, d.met_at, d.met_by, d.late_by_s
        dl.reminded_at, dl.overdue_at, dl.settled = d.reminded_at, d.overdue_at, d.settled
        s.add(dl)
    reports = {r.seq: r for r in s.exec(select(IncidentReport).where(IncidentReport.incident_id == row.id))}
    versions = {(x.seq, x.version): x for x in s.exec(select(ReportVersion).where(ReportVersion.incident_id == row.id))}
    for r in v.reports:
        rep = reports.get(r.seq) or IncidentReport(incident_id=row.id, seq=r.seq, kind=r.kind, label=r.label,
                                                   deadline_key=r.deadline_key)
        rep.state, rep.version = r.state, len(r.versions)
        rep.approved_by, rep.approved_at, rep.submitted_by, rep.submitted_at = (r.approved_by, r.approved_at,
                                                                                r.submitted_by, r.submitted_at)
        s.add(rep)
        for ver in r.versions:
            x = versions.get((r.seq, ver.version)) or ReportVersion(
                incident_id=row.id, seq=r.seq, version=ver.version, content=ver.content.model_dump(mode="json"),
                drafted_by=ver.by, drafted_at=ver.at)
            x.decision, x.reviewed_by, x.reviewed_at, x.comments = ver.decision, ver.reviewed_by, ver.reviewed_at, ver.comments
            s.add(x)
    return row


async def _write(req: RecordRequest, extra: list[NewEvent]) -> None:
    """The chain's view and the request's events (and `extra`), in one transaction."""
    events = [*audit_events(incident_subject(req.incident.incident_id), req.workflow_id, req.run_id, req.events),
              *extra]

    def save(s: Session) -> None:
        # a 上报 recorded failed (activities/upward.py gave up) closes its post, and a city receipt the webhook held for
        # it while it was being sent goes right after report.city.failed (store/upward.py)
        save_view(s, req)
        s.flush()
        append(s, city_posts.with_held(s, events))

    await write(save, [])


@activity.defn(name=names.Reporting.RECORD)
async def record(req: RecordRequest) -> None:
    await _write(req, [])


# ------------------------------------------------------------------ settled by the end of a response or a review


@activity.defn(name=names.Reporting.SETTLE)
async def settle(req: SettleRequest) -> SettleResult:
    """Each incident's reporting chain settles what is still open, or (`end` False: a response terminated) what is past
    (its `settle` update, which records it); a chain closed already, or an incident without one, is left as it is.
    The update's id makes a retry answer the same."""
    chains = await read(lambda s: {i.id: (i.workflow_id, i.status) for i in s.exec(
        select(Incident).where(col(Incident.id).in_(req.incident_ids)))})
    out = SettleResult()
    client = activity.client()
    for iid in req.incident_ids:
        wid, status = chains.get(iid, (None, None))
        if wid is None:
            continue
        if status == "closed":
            out.already_closed.append(iid)
            continue
        try:
            view = await client.get_workflow_handle(wid).execute_update(
                "settle", SettleIn(by=req.by, actor=req.actor, reason=req.reason, end=req.end), id=f"settle/{req.by}",
                result_type=ChainView)
        except RPCError as exc:
            if exc.status != RPCStatusCode.NOT_FOUND:  # NOT_FOUND: the chain has ended (its final report) meanwhile
                raise
            out.already_closed.append(iid)
            continue
        if req.by not in (view.settled_by, view.response_ended_by):
            out.already_closed.append(iid)
            continue
        out.settled[iid] = {v: [d.key for d in view.deadlines if d.settled == v] for v in ("omitted", "lapsed")}
        out.settled[iid]["late"] = [d.key for d in view.deadlines if d.late_by_s]
    return out


# ------------------------------------------------------------------ who


def holder(s: Session, position: str) -> Post | None:
    """The holder of a position, a district-level post first."""
    posts = list(s.exec(select(Post).where(Post.position_code == position).order_by(Post.id)))
    units = {u.id: u for u in s.exec(select(OrgUnit).where(OrgUnit.id.in_([p.org_unit_id for p in posts])))} if posts else {}
    posts.sort(key=lambda p: (units.get(p.org_unit_id) is None or units[p.org_unit_id].kind != "district", p.id))
    return posts[0] if posts else None


def _recipient_contact(s: Session, r: Recipient) -> Contact | None:
    if r.position is None:
        return Contact(person_id=f"rcpt:{r.id}", name=r.name_zh, mobile=r.mobile, im_id=r.im_id)
    post = holder(s, r.position)
    return _contact(s.get(Person, post.person_id)) if post else None


def find_targets(s: Session, req: TargetsRequest, at: datetime) -> TargetsResult:
    duty = duty_contacts(s, at)
    i, rules = req.incident, req.rules
    gaps: list[str] = []
    targets: list[Target] = []
    if req.purpose == "overdue":
        person = duty.get("duty_chief") or duty.get("leading_leader")
        if person is None:
            return TargetsResult(targets=[], gaps=["no duty chief or leading leader on duty"])
        targets.append(Target(key="overdue", tier="overdue", position="duty_chief", label=f"值班长{person.name}",
                              person=person, others=duty, policy=req.policy, priority=0))
    elif req.purpose == "receipts":
        recipients = list(rules.recipients)
        unit = s.get(OrgUnit, i.reporting_unit_id) if i.reporting_unit_id else None
        if unit is not None and unit.vertical_line:
            if unit.id in rules.city_lines:
                recipients.append(rules.city_lines[unit.id])
            else:
                gaps.append(f"{unit.name} ({unit.id}) has a vertical line but the rules name no city-level recipient")
        severity = rules.grade(i.severity, i.casualties)
        for r in recipients:
            if r.when is not None and not r.when.holds(i.category, i.subtype, severity, i.casualties):
                continue  # e.g. 抄报消防救援 only for fires and hazardous chemicals
            contact = _recipient_contact(s, r)
            if contact is None:
                gaps.append(f"recipient {r.id}: nobody holds position {r.position!r}")
                continue
            targets.append(Target(key=f"rcpt/{r.id}", tier="recipient", position=r.position or "", label=r.name_zh,
                                  person=contact, others=duty, policy=req.policy, priority=10))
    else:
        call = req.call
        post = None
        if call == SECTOR_LEADER or call.startswith("position:"):
            code = rules.sector_leader(i.category, i.subtype) if call == SECTOR_LEADER else call.split(":", 1)[1]
            post = holder(s, code) if code else None
            person = _contact(s.get(Person, post.person_id)) if post else None
            if person is None:
                gaps.append(f"nobody holds {code!r} ({call} of {i.category}/{i.subtype or '-'})")
        else:
            person = duty.get(call)
            if person is None:
                gaps.append(f"nobody on duty as {call}")
        if person is not None:
            targets.append(Target(key=f"call/{person.person_id}", tier="trigger", position=call, label=person.name,
                                  person=person, deputy=_contact(s.get(Person, post.deputy_id)) if post and post.deputy_id else None,
                                  superior=_contact(s.get(Person, post.superior_id)) if post and post.superior_id else None,
                                  others=duty, policy=req.policy, priority=0))
    return TargetsResult(targets=targets, gaps=gaps)


@activity.defn(name=names.Reporting.TARGETS)
async def targets(req: TargetsRequest) -> TargetsResult:
    return await read(lambda s: find_targets(s, req, _now()))


# ------------------------------------------------------------------ reminders


def reminder_text(title: str, label: str, due_at: datetime, left: int) -> str:
    return f"【报送提醒】{title}:{label}须于{local(due_at)}前报出(还剩约{left}分钟)。快报事实、慎报原因。"


@activity.defn(name=names.Reporting.REMIND)
async def remind(req: RemindRequest) -> None:
    d, i = req.deadline, req.record.incident
    left = max(0, round((d.due_at - (d.reminded_at or d.due_at)).total_seconds() / 60))

    people = await read(lambda s: on_duty_as(s, _now(), req.roles))
    body = reminder_text(i.title, d.label, d.due_at, left)
    outcomes = await deliver(sms_each(people.values(), lambda c: f"{req.record.workflow_id}/remind/{d.key}/{c.person_id}/sms",
                                      body, subject=incident_subject(i.incident_id),
                                      meta={"purpose": "reminder", "deadline": d.key}))
    sent = [{"role": role, "person_id": c.person_id, "name": c.name} for role, c in people.items()]
    event = NewEvent(subject=incident_subject(i.incident_id), kind=f"report.{d.kind}.reminder", step_id=f"deadline/{d.key}/reminder",
                     workflow_id=req.record.workflow_id, run_id=req.record.run_id, at=d.reminded_at,
                     payload={"deadline": d.key, "label": d.label, "due_at": d.due_at.isoformat(), "minutes_left": left,
                              "to": sent, "statuses": [o.status for o in outcomes],
                              "gap": None if people else f"nobody on duty as {', '.join(req.roles)}"})
    await _write(req.record, [event])


# ------------------------------------------------------------------ sending (escalation episodes)


def report_text(r: WrittenReport, title: str, received_at: datetime) -> str:
    v = r.latest.content
    c = v.casualties
    lines = [f"【{r.label}】{title}", f"接报时间:{local(received_at)}  发生时间:{local(v.occurred_at)}",
             f"地点:{v.place}", f"事件经过:{v.what_happened}",
             f"伤亡情况:死亡{c.deaths}人、受伤{c.injured}人、失联{c.missing}人、被困{c.trapped}人",
             f"已采取措施:{v.measures}"]
    if v.trend:
        lines.append(f"发展趋势:{v.trend}")
    if v.next_steps:
        lines.append(f"下一步工作:{v.next_steps}")
    lines.append(f"原因:{v.cause}(初步)" if v.cause else "原因:正在调查核实")
    lines.append(f"审核签发:{r.approved_by}  报送:区政府总值班室")
    return "\n".join(lines)


def render(send, req: FlushRequest, code: str | None, link: str | None) -> tuple[str, str | None]:
    i = req.record.incident
    answer = answer_text(code, link)
    if send.purpose in ("notify", "escalate"):
        if req.kind == "receipts" and req.report is not None:
            copy = "【抄报】" if send.target_key.removeprefix("rcpt/") in req.copies else ""
            body = copy + report_text(req.report, i.title, req.record.view.received_at) + "\n" + answer_text(code, link, "确认收到")
            voice = f"区政府总值班室报送{req.label}:{i.title}。请查收短信,按1确认收到。"
            return body, voice
        prefix = "【升级】值班长未应答,请您督促落实。" if send.purpose == "escalate" and req.kind == "overdue" else (
            "【升级】未应答,请您落实。" if send.purpose == "escalate" else "")
        if req.kind == "overdue":
            text = f"{prefix}【迟报督促】{req.text}时限{local(req.due_at)}。请立即督促报送。"
        else:
            text = prefix + req.text
        return text + answer, text + "请按1确认。"
    if send.purpose == "inform":
        what = "未回执" if req.kind == "receipts" else "未应答"
        return f"【告知】{i.title} {req.label}:{send.about}{what},请电话落实。", None
    if send.purpose == "cancel":
        why = send.key.rsplit("/cancel-", 1)[-1] if "/cancel-" in send.key else f"{req.label}已报出"
        return f"【已报出】{i.title}:{why}。无需再督促。", None
    return f"{i.title}:{req.label}", None


def _receipts(s: Session, req: FlushRequest, outcomes: dict, records: list[Record], now: datetime) -> None:
    seq = int(req.ref)
    keys = {x.target_key for x in req.sends} | {r.target_key for r in records if r.target_key}
    rows = {r.recipient_id: r for r in s.exec(select(ReportReceipt).where(ReportReceipt.incident_id == req.record.incident.incident_id,
                                                                          ReportReceipt.seq == seq))}
    for key in keys:
        rid = key.removeprefix("rcpt/")
        if rid not in rows:
            rows[rid] = ReportReceipt(incident_id=req.record.incident.incident_id, seq=seq, recipient_id=rid)
            s.add(rows[rid])
    for send in req.sends:
        row = rows[send.target_key.removeprefix("rcpt/")]
        o = outcomes[send.key]
        row.name = row.name or send.about
        row.attempts = [*row.attempts, {"key": send.key, "channel": send.channel, "to": mask_mobile(send.to) if send.channel != "im" else send.to,
                                        "purpose": send.purpose, "status": o.status, "at": now.isoformat()}]
        if send.purpose == "notify" and row.status in ("pending", "failed", "sent"):
            row.status = "failed" if o.status in REFUSED else "sent"
            row.sent_at = row.sent_at or now
        row.updated_at = now
    for r in records:
        row = rows.get((r.target_key or "").removeprefix("rcpt/"))
        if row is None:
            continue
        if r.kind == "ack":
            row.status, row.confirmed_at, row.confirmed_via = "confirmed", r.at, r.channel
        elif r.kind == "delivery" and row.status == "sent" and r.payload.get("status") == "delivered":
            row.status = "delivered"
        elif r.kind == "unreachable" and row.status != "confirmed":
            row.status = "unconfirmed"
        row.updated_at = now


@activity.defn(name=names.Reporting.FLUSH)
async def flush(req: FlushRequest) -> FlushResult:
    rec = req.record

    def save(s: Session, outcomes: dict[str, Outcome], now: datetime) -> None:
        save_view(s, rec)
        if req.kind == "receipts":
            _receipts(s, req, outcomes, req.records, now)

    batch = Batch(subject=incident_subject(rec.incident.incident_id), workflow_id=rec.workflow_id, run_id=rec.run_id, episode=req.episode,
                  kind=AUDIT_PREFIX[req.kind], sends=req.sends, records=req.records, context={"label": req.label})
    return FlushResult.model_validate(await send_and_record(batch, lambda send, code, link: render(send, req, code, link),
                                                     save=save))

