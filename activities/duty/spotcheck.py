"""六问 spot checks: the read model, drawing the sample after a real call-out, recording, finding call-outs to check."""
from __future__ import annotations

import asyncio
import random
from datetime import datetime

from sqlmodel import Session, col, select
from temporalio import activity

from activities.common import audit_events, duty_contacts, write
from activities.common import aware as _aware
from activities.common import contact as _contact
from activities.common import now as _now
from definitions.schema.common import Level
from definitions.schema.duty import SpotCheckSettings
from store.callouts import Callout, CalloutTarget
from store.db import session_scope
from store.directory import OrgUnit, Person, Position, Post, post_label
from store.duty import SpotCheck, SpotCheckAnswer, SpotCheckFollowup
from workflows.duty import DutyFlush
from workflows.escalation import Target
from workflows.spotcheck import Candidate, Opened as SpotOpened, OpenRequest as SpotOpen, Sampled
from workflows.kit import names
from workflows.spotcheck import RecordRequest as SpotRecord


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


@activity.defn(name=names.Duty.SPOTCHECK_OPEN)
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
                label = (f"{post_label(village.name if village else t.org_unit_id, pos.name_zh if pos else t.position_code)} "
                         f"{person.name}")
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


@activity.defn(name=names.Duty.SPOTCHECK_RECORD)
async def spotcheck_record(req: SpotRecord) -> None:
    await write(lambda s: _save_spotcheck(s, req.view.model_dump(mode="json")),
                audit_events(req.view.check_id, req.workflow_id, req.run_id, req.events))


@activity.defn(name=names.Duty.SPOTCHECK_CANDIDATES)
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
