"""Work order activities: the audit trail and read model, who answers for a unit and whom to call, 抄报消防救援,
the signing call and 督办 (escalation episodes), and 回访: the result posted to the hotline platform.

The hotline platform (settings `HOTLINE_PLATFORM_URL`) takes `POST <url>/results` with a JSON body and an
`Idempotency-Key: <source>-<ticket>-v<version>` header: a retry of the same version is answered with the receipt it
got first (tests/fakes/hotline_platform.py is a local fake with that contract). Without a URL configured the result
is recorded as posted locally (receipt "local"), so a district without the platform still closes its loop.
"""
from __future__ import annotations

from datetime import datetime

import httpx
from sqlmodel import Session, col, select
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.common import audit_events, duty_contacts, local, read, sms_each, write
from activities.common import contact as _contact
from activities.common import now as _now
from activities.delivery import deliver
from activities.escalation import Batch, send_and_record
from config import get_settings
from store.audit import NewEvent
from store.directory import OrgUnit, Person, Post
from store.workorders import WorkOrder, WorkOrderAssignment
from workflows.escalation import Target
from workflows.kit import names
from workflows.kit.events import WorkOrder as Kinds
from workflows.workorder import (FlushRequest, FlushResult, NotifyRequest, PostRequest, PostResult, RecordRequest,
                                 UnitRequest, UnitResult, WorkOrderView)

AUDIT_PREFIX = {"sign": Kinds.SIGN, "overdue": Kinds.OVERDUE}


# ------------------------------------------------------------------ the read model


def save_view(s: Session, req: RecordRequest) -> WorkOrder:
    v: WorkOrderView = req.view
    i = v.info
    row = s.get(WorkOrder, v.id)
    if row is None:
        row = WorkOrder(id=v.id, source=i.source, ticket=i.ticket, category=i.category, urgency=i.urgency, place=i.place,
                        town_id=i.town_id, words=i.words, caller_phone=i.caller_phone, received_at=v.received_at,
                        proposed_unit=i.proposed_unit, rules_id=req.rules_id, rules_version=req.rules_version,
                        created_by=i.created_by)
        s.add(row)
    a = v.assignments[-1] if v.assignments else None
    row.status, row.result, row.incident_id, row.fire_copied = v.status, v.result, v.incident_id, v.fire_copied
    row.unit_id, row.unit_name = (a.unit_id, a.unit_name) if a else (None, "")
    if a is not None:
        row.sign_due, row.feedback_due, row.complete_due = (a.deadline(k).due_at for k in ("sign", "feedback", "complete"))
    row.feedback = [f.model_dump(mode="json") for f in v.feedback]
    row.visits = [x.model_dump(mode="json") for x in v.visits]
    row.satisfaction = v.visits[-1].satisfaction if v.visits else None
    row.completed_at, row.closed_at, row.ended_at, row.updated_at = v.completed_at, v.closed_at, v.ended_at, _now()
    s.flush()
    have = {x.seq: x for x in s.exec(select(WorkOrderAssignment).where(WorkOrderAssignment.work_order_id == v.id))}
    for x in v.assignments:
        r = have.get(x.seq) or WorkOrderAssignment(work_order_id=v.id, seq=x.seq, unit_id=x.unit_id,
                                                   assigned_at=x.assigned_at)
        r.unit_name, r.assigned_by, r.answerers = x.unit_name, x.assigned_by, x.answerers
        r.deadlines = [d.model_dump(mode="json") for d in x.deadlines]
        r.signed_at, r.signed_by, r.signed_via = x.signed_at, x.signed_by, x.signed_via
        late = {d.key: d.late_by_s for d in x.deadlines}
        r.sign_late_s, r.feedback_late_s = late.get("sign"), late.get("feedback")
        complete = x.deadline("complete")
        r.complete_late_s = complete.late_by_s if complete.met_at is not None else r.complete_late_s
        r.completed_at = complete.met_at
        r.returned_at, r.return_reason, r.sent_back = x.returned_at, x.return_reason, x.sent_back
        r.closed = x is v.assignments[-1] and v.closed_at is not None
        s.add(r)
    return row


def _events(req: RecordRequest) -> list[NewEvent]:
    out = audit_events(req.view.id, req.workflow_id, req.run_id, req.events)
    if req.incident_events and req.view.incident_id:
        out += audit_events(req.view.incident_id, req.workflow_id, req.run_id, req.incident_events)
    return out


async def _write(req: RecordRequest, extra: list[NewEvent]) -> None:
    """The order's view and the request's events (and `extra`), in one transaction."""
    await write(lambda s: save_view(s, req), [*_events(req), *extra])


@activity.defn(name=names.WorkOrder.RECORD)
async def record(req: RecordRequest) -> None:
    await _write(req, [])


# ------------------------------------------------------------------ who answers for a unit, whom to call


def unit_post(s: Session, unit_id: str, positions: list[str]) -> Post | None:
    posts = list(s.exec(select(Post).where(Post.org_unit_id == unit_id, col(Post.position_code).in_(positions))))
    posts.sort(key=lambda p: (positions.index(p.position_code), p.id))
    return posts[0] if posts else None


def find_unit(s: Session, req: UnitRequest, at: datetime) -> UnitResult:
    unit = s.get(OrgUnit, req.unit_id)
    if unit is None or unit.kind not in ("department", "town"):
        return UnitResult(found=False)
    rules = req.rules
    post = unit_post(s, unit.id, rules.contact_positions)
    person = _contact(s.get(Person, post.person_id)) if post else None
    members = [p.id for p in s.exec(select(Person).where(Person.org_unit_id == unit.id).order_by(Person.id))]
    heads = [x for x in ((post.person_id, post.deputy_id) if post else ()) if x]
    answerers = list(dict.fromkeys([*heads, *members]))
    if post is None or person is None:
        return UnitResult(found=True, unit_name=unit.name, answerers=answerers,
                          gaps=[f"{unit.name} ({unit.id}): nobody holds {', '.join(rules.contact_positions)}"])
    others = dict(duty_contacts(s, at))
    for code in rules.policies[req.policy].positions():
        holder = s.exec(select(Post).where(Post.position_code == code).order_by(Post.id)).first()
        if holder is not None and (c := _contact(s.get(Person, holder.person_id))):
            others[f"position:{code}"] = c
    deputy = _contact(s.get(Person, post.deputy_id)) if post.deputy_id else None
    superior = _contact(s.get(Person, post.superior_id)) if post.superior_id else None
    steps = rules.policies[req.policy].steps
    gaps = [f"{unit.name}: no {what} in the directory" for what, c in (("deputy", deputy), ("superior", superior))
            if c is None and any(st.escalate == what for st in steps)]
    gaps += [f"nobody on duty as {who}" for who in {st.escalate or st.inform for st in steps} - {None}
             if who not in ("deputy", "superior") and not who.startswith("position:") and who not in others]
    target = Target(key=f"unit/{unit.id}", tier="unit", position=post.position_code, org_unit=unit.id, label=unit.name,
                    person=person, deputy=deputy, superior=superior, others=others, policy=req.policy, priority=10)
    return UnitResult(found=True, unit_name=unit.name, contact=person.name, answerers=answerers, targets=[target],
                      gaps=gaps)


@activity.defn(name=names.WorkOrder.UNIT)
async def unit(req: UnitRequest) -> UnitResult:
    return await read(lambda s: find_unit(s, req, _now()))


# ------------------------------------------------------------------ 抄报消防救援


def _order_line(v: WorkOrderView) -> str:
    i = v.info
    urgent = "【紧急】" if i.urgency == "urgent" else ""
    return f"{urgent}{i.source}工单{i.ticket}:{i.town_name}{i.place},{i.category}。{i.words}"


@activity.defn(name=names.WorkOrder.NOTIFY)
async def notify(req: NotifyRequest) -> None:
    v = req.record.view
    a = v.assignments[-1] if v.assignments else None

    def who(s: Session):
        unit = s.get(OrgUnit, req.unit_id)
        post = unit_post(s, req.unit_id, [*req.rules.contact_positions])
        if post is None:
            post = s.exec(select(Post).where(Post.org_unit_id == req.unit_id).order_by(Post.id)).first()
        return (unit.name if unit else req.unit_id), _contact(s.get(Person, post.person_id)) if post else None

    name, person = await read(who)
    body = f"【抄报消防救援】{_order_line(v)}" + (f"已分拨{a.unit_name}办理。" if a else "")
    outcomes = await deliver(sms_each([person] if person else [], lambda c: f"{v.workflow_id}/fire_copy/{c.person_id}/sms",
                                      body, subject=v.id, workflow_id=v.workflow_id, meta={"purpose": "fire_copy"}))
    event = NewEvent(subject=v.id, kind=Kinds.FIRE_COPIED, step_id="fire_copy", workflow_id=req.record.workflow_id,
                     run_id=req.record.run_id, at=_now(), payload={
                         "unit_id": req.unit_id, "unit": name, "person_id": person.person_id if person else None,
                         "statuses": [o.status for o in outcomes], "gap": None if person else f"nobody in {name}"})
    await _write(req.record, [event])


# ------------------------------------------------------------------ the signing call and 督办


def render(send, req: FlushRequest, code: str | None, link: str | None) -> tuple[str, str | None]:
    """What a person reads or hears: Chinese only."""
    v = req.record.view
    a = v.assignments[-1] if v.assignments else None
    unit = a.unit_name if a else ""
    line = _order_line(v)
    if req.kind == "sign":
        answer = f"签收请回复1(确认码{code})" + (f"或点击 {link}" if link else "") + "。"
        due = f"请于{local(a.deadline('sign').due_at)}前签收。" if a else ""
        prefix = f"【升级】{unit}负责人未签收,请您督促。" if send.purpose == "escalate" else ""
        text = f"{prefix}【工单分拨】{unit}:{line}{due}"
        voice = f"{prefix}区应急值班室分拨给{unit}一件热线工单,{v.info.category},地点{v.info.place}。签收请按1。"
    else:
        answer = f"收到请回复1(确认码{code})" + (f"或点击 {link}" if link else "") + "。"
        prefix = f"【升级】{unit}工单逾期,负责人未应答,请您督促。" if send.purpose == "escalate" else ""
        text = f"{prefix}【工单督办】{unit}:{req.label}已超时限。{line}"
        voice = f"{prefix}热线工单{req.label}已超时限,请立即督促办理。收到请按1。"
    if send.purpose in ("notify", "escalate"):
        return text + answer, voice
    if send.purpose == "inform":
        return f"【告知】{unit}工单{v.info.ticket}:{send.about}未应答,请电话落实。", None
    if send.purpose == "cancel":
        why = send.key.rsplit("/cancel-", 1)[-1] if "/cancel-" in send.key else "已处理"
        return f"【已处理】工单{v.info.ticket}:{why},无需再督促。", None
    return text, None


@activity.defn(name=names.WorkOrder.FLUSH)
async def flush(req: FlushRequest) -> FlushResult:
    rec = req.record

    def save(s: Session, outcomes, now) -> None:
        save_view(s, rec)

    batch = Batch(subject=rec.view.id, workflow_id=rec.workflow_id, run_id=rec.run_id, episode=req.episode,
                  kind=AUDIT_PREFIX[req.kind], sends=req.sends, records=req.records, context={"label": req.label})
    # what an answer made of the order (签收), after the answer itself, in the same transaction as the order's
    # view that shows it: the order never reads signed without its workorder.signed event
    return FlushResult.model_validate(await send_and_record(
        batch, lambda send, code, link: render(send, req, code, link), save=save,
        after=(lambda s: _events(rec)) if rec.events else None))


# ------------------------------------------------------------------ 回访: the result to the hotline platform


def idempotency_key(source: str, ticket: str, version: int) -> str:
    return f"{source}-{ticket}-v{version}"


@activity.defn(name=names.WorkOrder.POST)
async def post_result(req: PostRequest) -> PostResult:
    v = req.record.view
    i = v.info
    settings = get_settings()
    url = settings.hotline_platform_url
    if not url:
        return PostResult(receipt="local", posted_at=_now())
    a = v.assignments[-1] if v.assignments else None
    body = {"source": i.source, "ticket": i.ticket, "version": req.version, "result": v.result or "",
            "unit": a.unit_name if a else "", "unit_id": a.unit_id if a else None,
            "completed_at": v.completed_at.isoformat() if v.completed_at else None,
            "closed_at": v.closed_at.isoformat() if v.closed_at else None}
    key = idempotency_key(i.source, i.ticket, req.version)
    async with httpx.AsyncClient(timeout=20) as client:
        resp = await client.post(url.rstrip("/") + "/results", json=body, headers={"Idempotency-Key": key})
    if resp.status_code in (400, 404, 422):  # the platform refuses this result for good: say so, retrying won't help
        raise ApplicationError(f"the hotline platform refused the result of {key}: {resp.status_code} {resp.text[:200]}",
                               non_retryable=True)
    resp.raise_for_status()  # any other failure: retried (the key makes a retry count once)
    data = resp.json()
    return PostResult(receipt=str(data.get("receipt", "")), posted_at=_now(), duplicate=bool(data.get("duplicate")))


ALL = [record, unit, notify, flush, post_result]
