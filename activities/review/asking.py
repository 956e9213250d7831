"""Asking and reminding the units for their summaries, whom to call when one is overdue, and sending
the escalation of an overdue summary."""
from __future__ import annotations

from datetime import datetime

from sqlmodel import Session, select
from temporalio import activity

from activities.common import contact as _contact
from activities.common import duty_contacts, local, read
from activities.common import now as _now
from activities.delivery import Delivery, deliver
from activities.escalation import Batch, answer_text, send_and_record
from activities.review.view import _write, save_view, unit_post
from definitions.schema.review import ReviewTemplate
from store.audit import NewEvent
from store.directory import Person, Post
from workflows.escalation import Contact, Target
from workflows.kit import names
from workflows.review import FlushRequest, FlushResult, NotifyRequest, TargetsRequest, TargetsResult


def _unit_contacts(s: Session, unit_ids: list[str], positions: list[str]) -> dict[str, Contact | None]:
    out: dict[str, Contact | None] = {}
    for uid in unit_ids:
        post = unit_post(s, uid, positions)
        out[uid] = _contact(s.get(Person, post.person_id)) if post else None
    return out


def request_text(t: ReviewTemplate, purpose: str, title: str, unit: str, due_at: datetime) -> str:
    """The request for a unit's written summary, or its reminder (Chinese only)."""
    text = t.request_zh if purpose == "request" else t.remind_zh
    return text.format(title=title, unit=unit, due=local(due_at)) + "(回复1表示收到)"


def _requests(req: NotifyRequest, people: dict[str, Contact | None]) -> tuple[list[Delivery], dict[str, list[str]]]:
    """The messages asking (or reminding) each unit, and the send keys per unit."""
    v, t = req.record.view, req.template
    units = {u.unit_id: u for u in v.units}
    deliveries, plan = [], {}
    for uid in req.unit_ids:
        u, c = units[uid], people.get(uid)
        body = request_text(t, req.purpose, v.title, u.name, u.due_at)
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
    return deliveries, plan


@activity.defn(name=names.Review.NOTIFY)
async def notify(req: NotifyRequest) -> None:
    v = req.record.view
    units = {u.unit_id: u for u in v.units}
    people = await read(lambda s: _unit_contacts(s, req.unit_ids, req.template.contact_positions))
    deliveries, plan = _requests(req, people)
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
    await _write(req.record, events)


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


@activity.defn(name=names.Review.TARGETS)
async def targets(req: TargetsRequest) -> TargetsResult:
    return await read(lambda s: find_targets(s, req, _now()))


# ------------------------------------------------------------------ sending (escalation of an overdue summary)


def render_send(send, req: FlushRequest, code: str | None, link: str | None) -> tuple[str, str | None]:
    v = req.record.view
    u = next(x for x in v.units if x.unit_id == req.unit_id)
    base = req.text_zh.format(title=v.title, unit=u.name, due=local(u.due_at))
    answer = answer_text(code, link)
    if send.purpose in ("notify", "escalate"):
        if send.purpose == "escalate":  # the overdue text again, shorter: who did not answer, and what to do
            base = f"【复盘逾期】{v.title}:{u.name}书面总结已逾期({local(u.due_at)}),负责人未应答,请您督促报送。"
        return base + answer, base + "请按1确认。"
    if send.purpose == "inform":
        return f"【告知】{v.title}:{u.name}书面总结逾期,督促未获应答,请电话落实。", None
    if send.purpose == "cancel":
        why = send.key.rsplit("/cancel-", 1)[-1] if "/cancel-" in send.key else "书面总结已报送"
        return f"【已办结】{v.title}:{why}。无需再督促。", None
    return base, None


@activity.defn(name=names.Review.FLUSH)
async def flush(req: FlushRequest) -> FlushResult:
    rec = req.record
    batch = Batch(subject=rec.view.subject, workflow_id=rec.workflow_id, run_id=rec.run_id, episode=req.episode,
                  kind="review.escalation", sends=req.sends, records=req.records, context={"unit_id": req.unit_id})
    reports = await send_and_record(batch, lambda send, code, link: render_send(send, req, code, link),
                                    save=lambda s, outcomes, now: save_view(s, rec.view))
    return FlushResult.model_validate(reports)
