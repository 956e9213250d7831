"""Post-event review activities: open, the read model and audit trail, asking and reminding the units,
whom to call when a summary is overdue, sending, compiling the event report, sealing the case file.

The workflow hands every write the review's latest state (`ReviewView`); the rows of store/review.py
are upserted from it in the same transaction as the audit events.
"""
from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import structlog
from sqlmodel import Session, col, select
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.delivery import Delivery, deliver
from activities.escalation import Batch, send_and_record
from config import get_settings
from definitions.loader import load_library
from definitions.schema.reporting import CATEGORY_ZH, Severity
from definitions.schema.review import ReviewTemplate
from store import casefile
from store.audit import AuditChain, AuditEvent, NewEvent, append, list_events
from store.db import session_scope
from store.directory import OrgUnit, Person, Post
from store.incidents import Incident, ReportVersion
from store.replay import load_events
from store.report import render, sha256
from store.review import CaseFile, Review, ReviewReport, ReviewUnit, linked_callouts, statistics, timeline
from store.roster import on_duty
from workflows import subjects
from workflows.escalation import Contact, Target
from workflows.review import (
    ArchiveInfo,
    CompileRequest,
    Event,
    FlushRequest,
    FlushResult,
    NotifyRequest,
    OpenRequest,
    OpenResult,
    RecordRequest,
    ReportInfo,
    ReviewView,
    SealRequest,
    TargetsRequest,
    TargetsResult,
    UnitRef,
    late_text,
    review_subject,
)

log = structlog.get_logger("yingji.review")


def _now() -> datetime:
    return datetime.now(UTC)


def local(at: datetime | None, fmt: str = "%m月%d日%H:%M") -> str:
    if at is None:
        return "—"
    return at.astimezone(ZoneInfo(get_settings().timezone)).strftime(fmt)


def _contact(p: Person | None) -> Contact | None:
    return Contact(person_id=p.id, name=p.name, mobile=p.mobile, im_id=p.im_id) if p else None


def duty_contacts(s: Session, at: datetime) -> dict[str, Contact]:
    out: dict[str, Contact] = {}
    for shift in on_duty(s, at):
        if shift.role not in out and (c := _contact(s.get(Person, shift.person_id))):
            out[shift.role] = c
    return out


def unit_post(s: Session, unit_id: str, positions: list[str]) -> Post | None:
    """Who answers for a unit: the holder of the first of `positions` in it."""
    posts = list(s.exec(select(Post).where(Post.org_unit_id == unit_id, col(Post.position_code).in_(positions))
                        .order_by(Post.id)))
    posts.sort(key=lambda p: positions.index(p.position_code))
    return posts[0] if posts else None


# ------------------------------------------------------------------ open


activation_subject = subjects.activation_subject


def _has_chain(s: Session, subject: str) -> bool:
    return s.get(AuditChain, subject) is not None


def derive_units(s: Session, subjects: list[str]) -> list[str]:
    """Participating units from the audit trail: the incident's reporting unit and town, and every unit
    named by the activation's events (payload unit_id / unit / units / org_unit_id)."""
    found: list[str] = []

    def add(value: Any) -> None:
        for v in value if isinstance(value, list) else [value]:
            if isinstance(v, dict):
                v = v.get("id") or v.get("unit_id")
            if isinstance(v, str) and v and v not in found:
                found.append(v)

    for subject in subjects:
        for ev in load_events(s, subject):
            p = ev.payload
            if ev.kind == "incident.received":
                add(p.get("reporting_unit_id"))
                add(p.get("town_id"))
            elif ev.kind.split(".", 1)[0] in ("activation", "task", "directive", "dispatch", "group"):
                for key in ("unit_id", "unit", "units", "org_unit_id", "unit_ids"):
                    add(p.get(key))
    known = set(s.exec(select(OrgUnit.id).where(col(OrgUnit.id).in_(found)))) if found else set()
    return [u for u in found if u in known]


def open_review(req: OpenRequest) -> OpenResult:
    inp, settings = req.input, get_settings()
    lib = load_library(settings.definitions_dir)
    loaded = lib.review_template(inp.template)
    if loaded is None:
        raise ApplicationError(f"no review template {inp.template or '(default)'} in {settings.definitions_dir}",
                               type="invalid", non_retryable=True)
    template: ReviewTemplate = loaded.model
    subject = review_subject(inp.incident_id)
    gaps: list[str] = []
    with session_scope() as s:
        incident = s.get(Incident, inp.incident_id)
        own = subjects.incident_subject(inp.incident_id)
        base = [own] if subjects.kind_of(own) == "incident" and (incident is not None or _has_chain(s, own)) else []
        if not base:
            gaps.append(f"no incident {inp.incident_id!r} in the records: the report has no reporting chain")
        if inp.activation_id:  # the terminated activation itself, or checked by the API (api/services/reviews.py)
            act = activation_subject(inp.activation_id)
            if _has_chain(s, act):
                base.append(act)
            else:
                gaps.append(f"no audit trail of {act!r}: the report has no response levels, tasks or directives")
        linked = linked_callouts(s, inp.incident_id) if base else []
        for r in inp.related:  # what the starter named: only what the incident's trail links already
            if r not in linked:
                gaps.append(f"{r!r} is not linked to incident {inp.incident_id!r} in its audit trail: left out")
        base += [r for r in linked if r not in base]
        unit_ids = list(dict.fromkeys(inp.units)) or derive_units(s, base)
        units: list[UnitRef] = []
        for uid in unit_ids:
            ou = s.get(OrgUnit, uid)
            post = unit_post(s, uid, template.contact_positions) if ou else None
            person = s.get(Person, post.person_id) if post else None
            if ou is None:
                gaps.append(f"unit {uid!r} is not in the directory: nobody is asked for its summary")
            elif person is None:
                gaps.append(f"{ou.name} ({uid}): nobody holds {', '.join(template.contact_positions)}; "
                            "its summary must be recorded by the duty office")
            units.append(UnitRef(id=uid, name=ou.name if ou else uid, contact=person.name if person else ""))
        title = inp.title or (incident.title if incident else "") or inp.incident_id
        due = req.at + template.summary_deadline
        row = s.get(Review, inp.incident_id)
        if row is None:
            row = Review(incident_id=inp.incident_id, workflow_id=req.workflow_id, subject=subject,
                         activation_id=inp.activation_id, title=title, started_by=inp.started_by, started_at=req.at,
                         template_id=template.id, template_version=loaded.version)
            s.add(row)
        row.subjects, row.gaps = [*base, subject], gaps
        s.flush()
        have = {u.unit_id for u in s.exec(select(ReviewUnit).where(ReviewUnit.incident_id == inp.incident_id))}
        for u in units:  # the read model lists the units as soon as the review is open (asked in a moment)
            if u.id not in have:
                s.add(ReviewUnit(incident_id=inp.incident_id, unit_id=u.id, name=u.name, contact=u.contact,
                                 requested_at=req.at, due_at=due))
        s.flush()
        append(s, [NewEvent(subject=subject, kind="review.started", step_id="started", workflow_id=req.workflow_id,
                            run_id=req.run_id, actor=inp.started_by, at=req.at, payload={
                                "incident_id": inp.incident_id, "activation_id": inp.activation_id, "title": title,
                                "units": [u.model_dump() for u in units], "units_given": bool(inp.units),
                                "template": template.id, "template_version": loaded.version,
                                "due_at": due.isoformat(), "subjects": [*base, subject], "gaps": gaps})])
    return OpenResult(title=title, template=template, template_version=loaded.version, units=units,
                      subjects=[*base, subject], gaps=gaps)


@activity.defn(name="review.open")
async def open_(req: OpenRequest) -> OpenResult:
    return await asyncio.to_thread(open_review, req)


# ------------------------------------------------------------------ the read model and the audit trail


def save_view(s: Session, v: ReviewView) -> Review:
    row = s.get(Review, v.incident_id)
    if row is None:
        row = Review(incident_id=v.incident_id, workflow_id=v.workflow_id, subject=v.subject, started_at=v.started_at)
        s.add(row)
    row.activation_id, row.title, row.status, row.started_by = v.activation_id, v.title, v.status, v.started_by
    row.template_id, row.template_version, row.subjects, row.gaps = v.template, v.template_version, v.subjects, v.gaps
    row.report_version = v.reports[-1].version if v.reports else 0
    signed = next((x for x in reversed(v.signoffs) if x.decision == "approve"), None)
    row.signed_by, row.signed_at = (signed.by, signed.at) if signed else (None, None)
    if v.archive is not None:
        row.archive_sha256, row.sealed_at = v.archive.sha256, v.archive.sealed_at
    row.updated_at = _now()
    s.flush()
    have = {u.unit_id: u for u in s.exec(select(ReviewUnit).where(ReviewUnit.incident_id == v.incident_id))}
    for u in v.units:
        r = have.get(u.unit_id) or ReviewUnit(incident_id=v.incident_id, unit_id=u.unit_id, requested_at=u.requested_at,
                                              due_at=u.due_at)
        r.name, r.contact, r.state, r.due_at = u.name, u.contact, u.state, u.due_at
        r.submitted_at, r.submitted_by, r.late_by_s, r.version = u.submitted_at, u.submitted_by, u.late_by_s, u.version
        r.summary = u.summary.model_dump(mode="json") if u.summary else None
        r.escalation = u.escalation
        s.add(r)
    return row


def _events(req: RecordRequest, events: list[Event]) -> list[NewEvent]:
    return [NewEvent(subject=req.view.subject, kind=e.kind, step_id=e.step_id, workflow_id=req.workflow_id,
                     run_id=req.run_id, actor=e.actor, at=e.at, payload=e.payload) for e in events]


def _write(req: RecordRequest, extra: list[NewEvent]) -> None:
    with session_scope() as s:
        save_view(s, req.view)
        s.flush()
        append(s, [*_events(req, req.events), *extra])


@activity.defn(name="review.record")
async def record(req: RecordRequest) -> None:
    await asyncio.to_thread(_write, req, [])


# ------------------------------------------------------------------ asking and reminding the units


@activity.defn(name="review.notify")
async def notify(req: NotifyRequest) -> None:
    v, t = req.record.view, req.template
    units = {u.unit_id: u for u in v.units}

    def who() -> dict[str, Contact | None]:
        with session_scope(write=False) as s:
            out: dict[str, Contact | None] = {}
            for uid in req.unit_ids:
                post = unit_post(s, uid, t.contact_positions)
                out[uid] = _contact(s.get(Person, post.person_id)) if post else None
            return out

    people = await asyncio.to_thread(who)
    text = t.request_zh if req.purpose == "request" else t.remind_zh
    deliveries, plan = [], {}
    for uid in req.unit_ids:
        u, c = units[uid], people.get(uid)
        body = text.format(title=v.title, unit=u.name, due=local(u.due_at))
        body += f"(回复1表示收到)/ {'Please send' if req.purpose == 'request' else 'Reminder: send'} the written " \
                f"summary by {local(u.due_at, '%Y-%m-%d %H:%M')}."
        plan[uid] = []
        for channel in (ch.value for ch in t.channels):
            to = (c.im_id if channel == "im" else c.mobile) if c else None
            if not to:
                continue
            key = f"{req.record.workflow_id}/{req.purpose}/{req.round}/{uid}/{c.person_id}/{channel}"
            deliveries.append(Delivery(key=key, channel=channel, to=to, body=body, person_id=c.person_id,
                                       subject=v.subject, workflow_id=req.record.workflow_id, priority=50,
                                       meta={"purpose": f"review_{req.purpose}", "unit_id": uid}))
            plan[uid].append(key)
    outcomes = {o.key: o for o in await deliver(deliveries)}
    now = _now()
    kind = "review.summary.requested" if req.purpose == "request" else "review.summary.reminder"
    events = []
    for uid in req.unit_ids:
        u, c = units[uid], people.get(uid)
        sent = [{"channel": k.rsplit("/", 1)[1], "status": outcomes[k].status, "outbox_id": outcomes[k].outbox_id}
                for k in plan[uid]]
        events.append(NewEvent(subject=v.subject, kind=kind, step_id=f"unit/{uid}/{req.purpose}/{req.round}",
                               workflow_id=req.record.workflow_id, run_id=req.record.run_id, at=now, payload={
                                   "unit_id": uid, "unit": u.name, "due_at": u.due_at.isoformat(), "round": req.round,
                                   "person_id": c.person_id if c else None, "name": c.name if c else None,
                                   "sent": sent, "gap": None if sent else "nobody to send to"}))
    await asyncio.to_thread(_write, req.record, events)


# ------------------------------------------------------------------ whom to call when a summary is overdue


def find_targets(s: Session, req: TargetsRequest, at: datetime) -> TargetsResult:
    t = req.template
    post = unit_post(s, req.unit_id, t.contact_positions)
    person = _contact(s.get(Person, post.person_id)) if post else None
    if post is None or person is None:
        return TargetsResult(targets=[], gaps=[f"{req.unit_name} ({req.unit_id}): nobody holds "
                                               f"{', '.join(t.contact_positions)}"])
    duty = duty_contacts(s, at)
    others = dict(duty)
    for code in t.policies[t.overdue_policy].positions():
        holder = s.exec(select(Post).where(Post.position_code == code).order_by(Post.id)).first()
        if holder is not None and (c := _contact(s.get(Person, holder.person_id))):
            others[f"position:{code}"] = c
    deputy = _contact(s.get(Person, post.deputy_id)) if post.deputy_id else None
    superior = _contact(s.get(Person, post.superior_id)) if post.superior_id else None
    gaps = [f"{req.unit_name}: no {what} in the directory" for what, c in (("deputy", deputy), ("superior", superior))
            if c is None and any(st.escalate == what for st in t.policies[t.overdue_policy].steps)]
    target = Target(key=f"unit/{req.unit_id}", tier="unit", position=post.position_code, org_unit=req.unit_id,
                    label=req.unit_name, person=person, deputy=deputy, superior=superior, others=others,
                    policy=t.overdue_policy, priority=20)
    return TargetsResult(targets=[target], gaps=gaps)


@activity.defn(name="review.targets")
async def targets(req: TargetsRequest) -> TargetsResult:
    def read() -> TargetsResult:
        with session_scope(write=False) as s:
            return find_targets(s, req, _now())

    return await asyncio.to_thread(read)


# ------------------------------------------------------------------ sending (escalation of an overdue summary)


def render_send(send, req: FlushRequest, code: str | None, link: str | None) -> tuple[str, str | None]:
    v = req.record.view
    u = next(x for x in v.units if x.unit_id == req.unit_id)
    base = req.text_zh.format(title=v.title, unit=u.name, due=local(u.due_at))
    answer = f"请回复1确认(确认码{code})" + (f"或点击 {link}" if link else "") + "。"
    if send.purpose in ("notify", "escalate"):
        prefix = f"【升级】{u.name}书面总结逾期,负责人未应答,请您督促报送。" if send.purpose == "escalate" else ""
        return prefix + base + answer, prefix + base + "请按1确认。"
    if send.purpose == "inform":
        return f"【告知】{v.title}:{u.name}书面总结逾期,督促未获应答,请电话落实。", None
    if send.purpose == "cancel":
        why = send.key.rsplit("/cancel-", 1)[-1] if "/cancel-" in send.key else "书面总结已报送"
        return f"【已办结】{v.title}:{why}。无需再督促。/ No further action needed.", None
    return base, None


@activity.defn(name="review.flush")
async def flush(req: FlushRequest) -> FlushResult:
    rec = req.record
    batch = Batch(subject=rec.view.subject, workflow_id=rec.workflow_id, run_id=rec.run_id, episode=req.episode,
                  kind="review.escalation", sends=req.sends, records=req.records, context={"unit_id": req.unit_id})
    reports = await send_and_record(batch, lambda send, code, link: render_send(send, req, code, link),
                                    save=lambda s, outcomes, now: save_view(s, rec.view))
    return FlushResult.model_validate(reports)


# ------------------------------------------------------------------ the event report


def _incident_part(s: Session, incident_id: str, events: dict[str, list]) -> dict[str, Any]:
    row = s.get(Incident, incident_id)
    received = next((e for e in events.get(incident_id, []) if e.kind == "incident.received"), None)
    p = received.payload if received else {}
    out = {"title": (row.title if row else None) or p.get("title"), "received_at": received.at.isoformat() if received
           else (row.received_at.isoformat() if row else None), "source": p.get("source"),
           "category": p.get("category"), "category_zh": CATEGORY_ZH.get(p.get("category") or ""),
           "subtype": p.get("subtype"), "place": p.get("place") or (row.place if row else None),
           "reporting_unit": p.get("reporting_unit"), "summary": p.get("summary"),
           "severity": row.severity if row else p.get("severity"), "status": row.status if row else None,
           "closed_at": row.closed_at.isoformat() if row and row.closed_at else None,
           "casualties": ({"deaths": row.deaths, "injured": row.injured, "missing": row.missing, "trapped": row.trapped}
                          if row else p.get("casualties") or {})}
    try:
        out["severity_zh"] = Severity(out["severity"]).zh if out["severity"] else None
    except ValueError:
        out["severity_zh"] = None
    approved = s.exec(select(ReportVersion).where(ReportVersion.incident_id == incident_id,
                                                  ReportVersion.decision == "approve")
                      .order_by(col(ReportVersion.seq).desc(), col(ReportVersion.version).desc())).first()
    if approved is not None:  # the latest approved facts (快报事实)
        out["what_happened"] = approved.content.get("what_happened")
        out["measures"] = approved.content.get("measures")
        out["latest_report_seq"] = approved.seq
    return out


def build_report_data(s: Session, req: CompileRequest, at: datetime) -> dict[str, Any]:
    v = req.record.view
    events = {subject: load_events(s, subject) for subject in v.subjects}
    stats = statistics(events)
    people: set[str] = {u["person_id"] for c in stats["callouts"] for u in c["unreachable"] if u["person_id"]}
    actors = {e.actor for evs in events.values() for e in evs}
    signers = {x.by for x in v.signoffs}
    ids = list(people | actors | signers)
    names = {pid: name for pid, name in s.exec(select(Person.id, Person.name).where(col(Person.id).in_(ids)))} if ids else {}
    for c in stats["callouts"]:
        for u in c["unreachable"]:
            u["name"] = names.get(u["person_id"] or "", "")
    units, shortcomings, suggestions = [], [], []
    for u in v.units:
        d = u.model_dump(mode="json")
        d["late_text"] = late_text(u.late_by_s) if u.late_by_s else None
        units.append(d)
        if u.summary is not None:
            shortcomings.append({"unit": u.name, "text": u.summary.shortcomings})
            if u.summary.suggestions:
                suggestions.append({"unit": u.name, "text": u.summary.suggestions})
    signoff = None
    if req.signoff is not None:
        signoff = {**req.signoff.model_dump(mode="json"), "by_name": names.get(req.signoff.by, "")}
    return {
        "format": "yingji-event-report/1", "incident_id": v.incident_id, "activation_id": v.activation_id,
        "title": v.title, "version": req.version, "final": req.final, "compiled_at": at.isoformat(),
        "compiled_by": req.by, "subjects": v.subjects, "incident": _incident_part(s, v.incident_id, events),
        "timeline": timeline(events), "statistics": stats, "units": units,
        "lessons": {"shortcomings": shortcomings, "suggestions": suggestions},
        "signoff": signoff,
        "returns": [x.model_dump(mode="json") for x in v.signoffs if x.decision == "return"],
        "names": names, "template": {"id": v.template, "version": v.template_version},
    }


def compile_report(req: CompileRequest) -> ReportInfo:
    settings, at = get_settings(), _now()
    v = req.record.view
    with session_scope(write=False) as s:
        existing = s.exec(select(ReviewReport).where(ReviewReport.incident_id == v.incident_id,
                                                     ReviewReport.version == req.version)).first()
        if existing is not None:  # a retry: the report of this version exists already
            return ReportInfo(version=existing.version, final=existing.final, compiled_at=existing.compiled_at,
                              compiled_by=existing.compiled_by, sha256_json=existing.sha256_json,
                              sha256_pdf=existing.sha256_pdf, pdf_bytes=len(existing.pdf) if existing.pdf else None)
        data = build_report_data(s, req, at)
    pdf_error = None
    try:
        text, html, pdf = render(data, settings.timezone)
    except Exception as exc:  # noqa: BLE001 - a report without its PDF is better than none; the error is recorded
        log.error("event report PDF failed", incident=v.incident_id, error=str(exc))
        text, html, _ = render(data, settings.timezone, pdf=False)
        pdf, pdf_error = None, str(exc)[:500]
    info = ReportInfo(version=req.version, final=req.final, compiled_at=at, compiled_by=req.by,
                      sha256_json=sha256(text), sha256_pdf=sha256(pdf) if pdf else None, pdf_bytes=len(pdf) if pdf else None)
    kind = "review.report.final" if req.final else "review.report.compiled"
    with session_scope() as s:
        save_view(s, v)
        s.flush()
        s.add(ReviewReport(incident_id=v.incident_id, version=req.version, final=req.final, compiled_at=at,
                           compiled_by=req.by, data=data, json_text=text, html=html, pdf=pdf,
                           sha256_json=info.sha256_json, sha256_pdf=info.sha256_pdf))
        st = data["statistics"]
        append(s, [NewEvent(subject=v.subject, kind=kind, step_id=f"report/v{req.version}", actor=req.by,
                            workflow_id=req.record.workflow_id, run_id=req.record.run_id, at=at, payload={
                                "version": req.version, "final": req.final, "sha256_json": info.sha256_json,
                                "sha256_pdf": info.sha256_pdf, "pdf_error": pdf_error,
                                "units": len(data["units"]),
                                "summaries": sum(1 for u in data["units"] if u["summary"]),
                                "callouts": [{"subject": c["subject"], "targets": c["targets"],
                                              "acknowledged": c["acknowledged"]} for c in st["callouts"]],
                                "escalations": st["escalations"]["total"], "events": st["events"]})])
    return info


@activity.defn(name="review.compile")
async def compile_(req: CompileRequest) -> ReportInfo:
    return await asyncio.to_thread(compile_report, req)


# ------------------------------------------------------------------ the case file


def seal_case(req: SealRequest) -> ArchiveInfo:
    settings, v = get_settings(), req.record.view
    with session_scope(write=False) as s:
        done = s.get(CaseFile, v.incident_id)
        if done is not None:  # a retry after the archive was stored
            return ArchiveInfo(sha256=done.sha256, bytes=done.size, files=len(done.manifest.get("files", {})) + 2,
                               manifest_sha256=done.manifest_sha256, sealed_at=done.sealed_at)
        report = s.exec(select(ReviewReport).where(ReviewReport.incident_id == v.incident_id)
                        .order_by(col(ReviewReport.version).desc())).first()
        if report is None or not report.final:
            raise ApplicationError("no signed report to seal", type="conflict", non_retryable=True)
        events: dict[str, list[AuditEvent]] = {subject: list_events(s, subject=subject) for subject in v.subjects}
        outbox, inbox = casefile.collect_messages(s, v.subjects)
    defs = casefile.attach_definition_files(casefile.definition_versions(events), settings.definitions_dir)
    sealed_at = _now()
    contents = casefile.CaseContents(
        incident_id=v.incident_id, title=v.title, sealed_at=sealed_at, sealed_by=req.by,
        report_json=report.json_text.encode(), report_html=report.html.encode(), report_pdf=report.pdf,
        events=events, outbox=outbox, inbox=inbox, definitions=defs)
    data, manifest = casefile.build(contents)
    digest = casefile.sha256(data)
    filename = casefile.filename_for(v.incident_id, sealed_at)
    info = ArchiveInfo(sha256=digest, bytes=len(data), files=len(manifest["files"]) + 2,
                       manifest_sha256=manifest["manifest_sha256"], sealed_at=sealed_at)
    with session_scope() as s:
        if s.get(CaseFile, v.incident_id) is not None:
            raise ApplicationError("sealed concurrently; retrying reads the stored archive", type="retry")
        s.add(CaseFile(incident_id=v.incident_id, filename=filename, sha256=digest, size=len(data),
                       manifest_sha256=manifest["manifest_sha256"], manifest=manifest, data=data, sealed_at=sealed_at,
                       sealed_by=req.by))
        view = v.model_copy(update={"archive": info})
        save_view(s, view)
        s.flush()
        append(s, [NewEvent(subject=v.subject, kind="review.sealed", step_id="sealed", actor=req.by,
                            workflow_id=req.record.workflow_id, run_id=req.record.run_id, at=sealed_at, payload={
                                "filename": filename, "sha256": digest, "bytes": len(data), "files": info.files,
                                "manifest_sha256": manifest["manifest_sha256"], "report_version": report.version,
                                "subjects": {k: {"events": m["events"], "head_hash": m["head_hash"]}
                                             for k, m in manifest["subjects"].items()},
                                "definitions": [{k: d.get(k) for k in ("kind", "id", "version", "file")}
                                                for d in manifest["definitions"]]})])
    return info


@activity.defn(name="review.seal")
async def seal(req: SealRequest) -> ArchiveInfo:
    return await asyncio.to_thread(seal_case, req)
