"""The duty desk: who is on duty now, the running and recent call-outs (drills apart) with their next
deadline, recent warnings and opted-out numbers; run with a database session."""
from __future__ import annotations

from collections import Counter, defaultdict
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlmodel import Session, col, func, select

from api.services.board import plan_of
from api.services.directory import names as _names
from config import get_settings
from definitions.loader import Library
from store.audit import AuditEvent
from store.callouts import Callout, CalloutTarget
from store.directory import Person, mask_mobile
from store.drillweeks import below_text, recent_weeks
from store.replay import TERMINAL, deadline_from_attempts, policy_waits
from store.roster import DUTY_ROLES, on_duty
from store.warnings import Warning


def duty_now(s: Session, at: datetime) -> list[dict[str, Any]]:
    people: dict[str, list[dict]] = defaultdict(list)
    for shift in on_duty(s, at):
        p = s.get(Person, shift.person_id)
        people[shift.role].append({"name": p.name if p else shift.person_id, "mobile": mask_mobile(p.mobile) if p else "",
                                   "e164": p.mobile if p else "",
                                   "ends_at": shift.ends_at})
    return [{"role": role, "zh": zh, "en": en, "people": people.get(role, [])} for role, (zh, en) in DUTY_ROLES.items()]


def _counts(s: Session, ids: list[str]) -> dict[str, Counter]:
    out: dict[str, Counter] = {i: Counter() for i in ids}
    if ids:
        for cid, state, n in s.exec(select(CalloutTarget.callout_id, CalloutTarget.state, func.count())
                                    .where(col(CalloutTarget.callout_id).in_(ids))
                                    .group_by(CalloutTarget.callout_id, CalloutTarget.state)):
            out[cid][state] = n
    return out


def next_deadline(s: Session, lib: Library, c: Callout) -> datetime | None:
    plan = plan_of(lib, c)
    if plan is None:
        return None
    waits = policy_waits(plan)
    dues = [due for t in s.exec(select(CalloutTarget).where(CalloutTarget.callout_id == c.id,
                                                            col(CalloutTarget.state).not_in(list(TERMINAL))))
            if (due := deadline_from_attempts(waits, t.tier, t.target_key, t.attempts))]
    return min(dues) if dues else None


def desk(s: Session, lib: Library, at: datetime) -> dict[str, Any]:
    """Real call-outs only: a drill is listed apart (with its marker) and counts in no figure of the desk."""
    real, drill = col(Callout.drill).is_(False), col(Callout.drill).is_(True)
    running = list(s.exec(select(Callout).where(Callout.status == "running", real)
                          .order_by(col(Callout.started_at).desc())))
    ended = list(s.exec(select(Callout).where(Callout.status != "running", real)
                        .order_by(col(Callout.started_at).desc()).limit(5)))
    drills = list(s.exec(select(Callout).where(drill, (Callout.status == "running") | (Callout.started_at > at - timedelta(days=1)))
                         .order_by(col(Callout.started_at).desc()).limit(5)))
    counts = _counts(s, [c.id for c in running + ended + drills])
    warnings = list(s.exec(select(Warning).where(Warning.received_at > at - timedelta(days=2))
                           .order_by(col(Warning.received_at).desc()).limit(20)))

    def view(c: Callout) -> dict[str, Any]:
        n = counts[c.id]
        return {"c": c, "total": sum(n.values()), "acknowledged": n["acknowledged"], "counts": dict(n),
                "deadline": next_deadline(s, lib, c) if c.status == "running" else None}

    alerts = list(s.exec(select(AuditEvent).where(AuditEvent.kind == "gateway.opted_out", AuditEvent.at > at - timedelta(days=7))
                         .order_by(col(AuditEvent.seq).desc()).limit(20)))
    return {"duty": duty_now(s, at), "running": [view(c) for c in running], "ended": [view(c) for c in ended],
            "drills": [view(c) for c in drills], "drill_weeks": drill_weeks(s, lib, at),
            "warnings": [w for w in warnings if w.expires_at is None or w.expires_at > at or w.callout_id],
            "alerts": [{"at": e.at, "subject": e.subject, "person": _names(s, {e.payload.get("person_id") or ""}).get(
                e.payload.get("person_id") or "", e.payload.get("person_id")), "to": e.payload.get("to")} for e in alerts]}


def drill_weeks(s: Session, lib: Library, at: datetime) -> dict[str, Any] | None:
    """The weekly drill count (store/drillweeks.py): this week so far and the last complete week, each with what it
    is short of; None when the duty definitions are not usable."""
    duty = lib.duty()
    if duty is None:
        return None
    weeks = recent_weeks(s, duty, at, ZoneInfo(get_settings().timezone))
    for wk in weeks.values():
        wk["short_zh"] = below_text(wk)
    return weeks
