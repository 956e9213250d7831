"""What the console's pages show: plain functions over a database session (the routes stay thin)."""
from __future__ import annotations

from collections import Counter, defaultdict
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote

from sqlmodel import Session, col, func, select

from api.services.warnings import Normalised
from definitions.loader import Library
from store.audit import AuditEvent
from store.callouts import Callout, CalloutTarget
from store.directory import (
    OrgUnit,
    Person,
    Position,
    Post,
    mask_mobile,
    units_for_areas,
)
from store.messages import OutboxMessage
from store.replay import STATES, TERMINAL, deadline_from_attempts, policy_waits
from workflows.subjects import activation_subject
from store.roster import DUTY_ROLES, on_duty
from store.targets import resolve_targets
from store.warnings import Warning

BOARD_LIMIT = 500


def plan_of(lib: Library, callout: Callout) -> Any | None:
    """The stored plan if it has the version the call-out runs with (its waits give the deadlines)."""
    loaded = lib.of("callout").get(callout.plan_id)
    return loaded.model if loaded is not None and loaded.version == callout.plan_version else None


# ------------------------------------------------------------------ duty desk


def duty_now(s: Session, at: datetime) -> list[dict[str, Any]]:
    people: dict[str, list[dict]] = defaultdict(list)
    for shift in on_duty(s, at):
        p = s.get(Person, shift.person_id)
        people[shift.role].append({"name": p.name if p else shift.person_id, "mobile": mask_mobile(p.mobile) if p else "",
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
            "drills": [view(c) for c in drills],
            "warnings": [w for w in warnings if w.expires_at is None or w.expires_at > at or w.callout_id],
            "alerts": [{"at": e.at, "subject": e.subject, "person": _names(s, {e.payload.get("person_id") or ""}).get(
                e.payload.get("person_id") or "", e.payload.get("person_id")), "to": e.payload.get("to")} for e in alerts]}


# ------------------------------------------------------------------ new call-out


def towns(s: Session) -> list[OrgUnit]:
    return list(s.exec(select(OrgUnit).where(OrgUnit.kind == "town").order_by(OrgUnit.id)))


def preview(s: Session, lib: Library, w: Normalised, at: datetime) -> dict[str, Any]:
    """Who a warning would call, decided as the intake decides it, resolved as the workflow resolves it."""
    loaded = lib.callout_plan_for(f"{w.event} {w.headline}", w.level)
    units = units_for_areas(s, w.geocodes, w.area_descs)
    out: dict[str, Any] = {"warning": w, "plan": loaded.model if loaded else None, "towns": units, "tiers": [],
                           "total": 0, "gaps": [], "starts": False, "why": None}
    if loaded is None:
        out["why"] = "no call-out plan matches and there is no default plan"
        return out
    plan = loaded.model
    if w.msg_type != "Alert":
        out["why"] = f"a CAP {w.msg_type} is passed to the running call-out it references ({', '.join(w.references)})"
        return out
    if w.level is None or w.level < plan.min_level:
        out["why"] = ("no level" if w.level is None else f"{w.level.value} is below the plan's {plan.min_level.value}")
        return out
    tiers = plan.tiers_for(w.level)
    if not units and not any(t.scope in ("district", "departments") for t in tiers):
        out["why"] = "the warning's area matches no town of the directory"
        return out
    found, gaps = resolve_targets(s, plan, [u.id for u in units], [t.id for t in tiers], at)
    by_tier: dict[str, list[dict]] = defaultdict(list)
    for t in found:
        by_tier[t["tier"]].append(t)
    out["tiers"] = [{"id": t.id, "zh": t.name_zh, "en": t.name_en, "policy": t.policy, "targets": by_tier.get(t.id, [])}
                    for t in tiers]
    out.update(total=len(found), gaps=gaps, starts=True)
    from api.services.duty import target_warnings  # the duty day's contact freshness

    out["contact_warnings"] = target_warnings(s, lib, found, at)
    return out


# ------------------------------------------------------------------ call-out board


def _names(s: Session, ids: set[str]) -> dict[str, str]:
    ids.discard("")
    if not ids:
        return {}
    stmt = select(Person.id, Person.name)
    return {pid: name for pid, name in s.exec(stmt.where(col(Person.id).in_(list(ids))) if len(ids) <= 1000 else stmt)}


def row(t: CalloutTarget, names: dict[str, str], waits: dict | None) -> dict[str, Any]:
    """One target as the board shows it (and as the live updates send it)."""
    last = t.attempts[-1] if t.attempts else None
    asks = sum(1 for a in t.attempts if a.get("purpose") in ("notify", "escalate"))
    due = (deadline_from_attempts(waits, t.tier, t.target_key, t.attempts)
           if waits is not None and t.state not in TERMINAL else None)
    return {"id": t.id, "key": t.target_key, "tier": t.tier, "label": t.name, "person_id": t.person_id,
            "state": t.state, "attempts": asks, "sends": len(t.attempts),
            "last": f"{last.get('channel')} · {last.get('status')}" if last else "",
            "ack_at": t.acknowledged_at.isoformat() if t.acknowledged_at else None, "ack_channel": t.ack_channel,
            "ack_late": t.ack_late,
            "ack_by": names.get(t.ack_by or "", "") if t.ack_by and t.ack_by != t.person_id else "",
            "escalated": [names.get(p, p) for p in t.escalated_to], "due": due.isoformat() if due else None}


def rows_view(s: Session, targets: list[CalloutTarget], waits: dict | None) -> list[dict[str, Any]]:
    ids = {p for t in targets for p in (t.ack_by or "", *t.escalated_to)}
    names = _names(s, ids)
    return [row(t, names, waits) for t in targets]


def tier_counts(s: Session, callout_id: str) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for tier, state, n in s.exec(select(CalloutTarget.tier, CalloutTarget.state, func.count())
                                 .where(CalloutTarget.callout_id == callout_id)
                                 .group_by(CalloutTarget.tier, CalloutTarget.state)):
        out.setdefault(tier, dict.fromkeys(STATES, 0))[state] = n
    return out


def board(s: Session, lib: Library, callout_id: str, tier: str | None, state: str | None,
          offset: int = 0, limit: int = BOARD_LIMIT) -> dict[str, Any] | None:
    c = s.get(Callout, callout_id)
    if c is None:
        return None
    plan = plan_of(lib, c)
    loaded = lib.of("callout").get(c.plan_id)
    tier_names = {t.id: (t.name_zh, t.name_en) for t in loaded.model.tiers} if loaded else {}
    stmt = select(CalloutTarget).where(CalloutTarget.callout_id == callout_id)
    if tier:
        stmt = stmt.where(CalloutTarget.tier == tier)
    if state:
        stmt = stmt.where(CalloutTarget.state == state)
    shown = list(s.exec(stmt.order_by(CalloutTarget.shard, CalloutTarget.id).offset(offset).limit(limit)))
    counts = tier_counts(s, callout_id)
    matching = sum(n for tr, by_state in counts.items() if not tier or tr == tier
                   for st, n in by_state.items() if not state or st == state)
    return {"c": c, "plan": plan, "tier_names": tier_names, "counts": counts,
            "totals": {st: sum(by.get(st, 0) for by in counts.values()) for st in STATES},
            "total": sum(sum(by.values()) for by in counts.values()), "matching": matching,
            "rows": rows_view(s, shown, policy_waits(plan) if plan else None), "tier_f": tier, "state": state,
            "offset": offset, "limit": limit}


def starting(s: Session, callout_id: str) -> bool:
    """A warning names this call-out, but its workflow has not opened it yet (a moment after the start)."""
    return s.exec(select(Warning.id).where(Warning.callout_id == callout_id)).first() is not None


def changed_rows(s: Session, lib: Library, callout_id: str, since: datetime) -> tuple[list[dict], datetime]:
    """Targets updated at or after `since` (the caller keeps what it sent and drops repeats)."""
    c = s.get(Callout, callout_id)
    plan = plan_of(lib, c) if c else None
    targets = list(s.exec(select(CalloutTarget).where(CalloutTarget.callout_id == callout_id,
                                                      CalloutTarget.updated_at >= since)))
    newest = max((t.updated_at for t in targets), default=since)
    return rows_view(s, targets, policy_waits(plan) if plan else None), newest


def target_messages(s: Session, callout_id: str, target_id: int) -> dict[str, Any] | None:
    t = s.get(CalloutTarget, target_id)
    if t is None or t.callout_id != callout_id:
        return None
    people = [t.person_id, *t.escalated_to]
    msgs = [m for m in s.exec(select(OutboxMessage).where(OutboxMessage.subject == callout_id,
                                                          col(OutboxMessage.person_id).in_(people))
                              .order_by(OutboxMessage.id))
            if (m.meta or {}).get("target_key") in (None, t.target_key)]
    names = _names(s, set(people))
    return {"target": t, "messages": msgs, "names": names}


# ------------------------------------------------------------------ replay


def timeline(s: Session, subject: str, kind: str | None, actor: str | None, limit: int = 1000) -> dict[str, Any]:
    base = select(AuditEvent).where(AuditEvent.subject == subject)
    first, last, n = s.exec(select(func.min(AuditEvent.at), func.max(AuditEvent.at), func.count())
                            .where(AuditEvent.subject == subject)).one()
    stmt = base
    if kind:
        stmt = stmt.where(col(AuditEvent.kind).startswith(kind))
    if actor:
        stmt = stmt.where(AuditEvent.actor == actor)
    events = list(s.exec(stmt.order_by(AuditEvent.chain_seq).limit(limit)))
    kinds = list(s.exec(select(AuditEvent.kind).where(AuditEvent.subject == subject).distinct().order_by(AuditEvent.kind)))
    actors = list(s.exec(select(AuditEvent.actor).where(AuditEvent.subject == subject).distinct()
                         .order_by(AuditEvent.actor)))
    from store.types import UtcDateTime

    def aware(v: Any) -> datetime | None:  # aggregates skip the column type on SQLite
        if v is None or isinstance(v, datetime) and v.tzinfo is not None:
            return v
        return UtcDateTime().process_result_value(datetime.fromisoformat(v) if isinstance(v, str) else v, None)

    return {"events": events, "first": aware(first), "last": aware(last), "count": n, "kinds": kinds,
            "actors": actors, "limited": len(events) >= limit}


# ------------------------------------------------------------------ directory


def directory(s: Session, unit_id: str | None) -> dict[str, Any]:
    units = list(s.exec(select(OrgUnit).order_by(OrgUnit.kind, OrgUnit.id)))
    by_kind: dict[str, list[OrgUnit]] = defaultdict(list)
    for u in units:
        by_kind[u.kind].append(u)
    posts = []
    unit = s.get(OrgUnit, unit_id) if unit_id else None
    if unit is not None:
        positions = {p.code: p for p in s.exec(select(Position))}
        rows = list(s.exec(select(Post).where(Post.org_unit_id == unit.id).order_by(Post.id)))
        names = _names(s, {p for r in rows for p in (r.person_id, r.deputy_id or "", r.superior_id or "")})
        people = {p.id: p for p in s.exec(select(Person).where(col(Person.id).in_([r.person_id for r in rows])))}
        for r in rows:
            pos = positions.get(r.position_code)
            posts.append({"position": pos, "code": r.position_code, "person": names.get(r.person_id, r.person_id),
                          "mobile": mask_mobile(people[r.person_id].mobile) if r.person_id in people else "",
                          "deputy": names.get(r.deputy_id or "", ""), "superior": names.get(r.superior_id or "", "")})
    children = [u for u in units if unit is not None and u.parent_id == unit.id]
    return {"by_kind": by_kind, "unit": unit, "posts": posts, "children": children,
            "counts": {"units": len(units), "persons": s.exec(select(func.count()).select_from(Person)).one()}}


# ------------------------------------------------------------------ replay: which procedure, which case file


def procedure_of(s: Session, subject: str) -> tuple[str, str]:
    """(the console page of the subject's procedure, its workflow id), from the subject and its first event."""
    first = s.exec(select(AuditEvent).where(AuditEvent.subject == subject).order_by(AuditEvent.chain_seq).limit(1)).first()
    kind = first.kind.split(".", 1)[0] if first else ""
    wid = (first.workflow_id if first else None) or subject
    for prefix, page in (("activation/", "activations"), ("review/", "reviews")):
        if subject.startswith(prefix):
            return f"/console/{page}/{quote(subject[len(prefix):], safe='')}", wid
    if kind in ("incident", "report"):
        return f"/console/incidents/{quote(subject, safe='')}", wid
    return f"/console/callouts/{quote(subject, safe='')}", wid


def sealed_case_of(s: Session, subject: str) -> dict[str, Any] | None:
    """The sealed case file 一事一档 that holds this subject's audit trail, if there is one."""
    from store.review import CaseFile, Review

    for row in s.exec(select(Review).where(col(Review.archive_sha256).is_not(None))
                      .order_by(col(Review.sealed_at).desc())):
        if subject in (row.subjects or []) or subject in (row.incident_id, row.subject):
            case = s.exec(select(CaseFile.filename, CaseFile.sha256, CaseFile.size)
                          .where(CaseFile.incident_id == row.incident_id)).first()
            if case is not None:
                return {"incident_id": row.incident_id, "filename": case[0], "sha256": case[1], "bytes": case[2],
                        "url": f"/console/reviews/{quote(row.incident_id, safe='')}/casefile"}
    return None


def replay_subjects(s: Session, limit: int = 30) -> dict[str, list[dict[str, Any]]]:
    """Recent incidents, activations and reviews for the replay index (call-outs come from the desk)."""
    from store.activations import Activation
    from store.incidents import Incident
    from store.review import Review

    incidents = [{"subject": r.id, "label": r.title or r.id, "at": r.received_at}
                 for r in s.exec(select(Incident).order_by(col(Incident.received_at).desc()).limit(limit))]
    activations = [{"subject": activation_subject(r.id), "label": r.plan_name or r.id, "at": r.activated_at}
                   for r in s.exec(select(Activation).order_by(col(Activation.activated_at).desc()).limit(limit))]
    reviews = [{"subject": r.subject, "label": r.title or r.incident_id, "at": r.started_at}
               for r in s.exec(select(Review).order_by(col(Review.started_at).desc()).limit(limit))]
    return {"incidents": incidents, "activations": activations, "reviews": reviews}
