"""What the Excel exports hold that no list already answers: a call-out's targets with names, units and posts
(who answered, when), and the whole directory (通讯录) post by post with masked numbers. The incidents and the
message log are exported from their own services (incidents.incident_list, messagelog.message_log). Run with
a database session; api/console/exports.py writes the sheets."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from api.services.directory import names as person_names
from definitions.loader import Library
from store.answers import answered_in
from store.callouts import Callout, CalloutTarget
from store.directory import OrgUnit, Person, Position, Post, mask_mobile

MAX_ROWS = 50_000


def _at(value: Any) -> datetime | None:
    if not value:
        return None
    return value if isinstance(value, datetime) else datetime.fromisoformat(str(value))


def callout_targets(s: Session, lib: Library, callout_id: str) -> dict[str, Any] | None:
    """The call-out and every target (tier by its Chinese name, person, unit, post, state, notices, answer);
    None: no such call-out."""
    c = s.get(Callout, callout_id)
    if c is None:
        return None
    loaded = lib.of("callout").get(c.plan_id)
    tiers = {t.id: t.name_zh for t in loaded.model.tiers} if loaded else {}
    targets = list(s.exec(select(CalloutTarget).where(CalloutTarget.callout_id == callout_id)
                          .order_by(CalloutTarget.shard, CalloutTarget.id).limit(MAX_ROWS)))
    names = person_names(s, {p for t in targets for p in (t.person_id, t.ack_by or "", *t.escalated_to)})
    units = dict(s.exec(select(OrgUnit.id, OrgUnit.name).where(col(OrgUnit.id).in_({t.org_unit_id for t in targets}))).all()) \
        if targets else {}
    positions = dict(s.exec(select(Position.code, Position.name_zh)).all())
    answered = answered_in(s, callout_id)
    rows = []
    for t in targets:
        sends = [_at(a.get("at")) for a in t.attempts if a.get("at")]
        rows.append({"tier": tiers.get(t.tier, t.tier), "name": names.get(t.person_id, t.name), "person_id": t.person_id,
                     "unit": units.get(t.org_unit_id, t.org_unit_id),
                     "position": positions.get(t.position_code, t.position_code), "state": t.state,
                     "sends": len(t.attempts), "first_at": min(sends) if sends else None,
                     "last_at": max(sends) if sends else None, "answered_at": answered.get(t.id),
                     "ack_at": t.acknowledged_at,
                     "ack_channel": t.ack_channel or "", "ack_by": names.get(t.ack_by or "", t.ack_by or ""),
                     "late": t.ack_late, "escalated": "、".join(names.get(p, p) for p in t.escalated_to)})
    return {"callout": c, "rows": rows}


def directory_rows(s: Session) -> list[dict[str, Any]]:
    """Every post of every unit (district, departments, towns, villages), with its holder, deputy and superior."""
    units = {u.id: u for u in s.exec(select(OrgUnit))}
    positions = {p.code: p.name_zh for p in s.exec(select(Position))}
    people = {p.id: p for p in s.exec(select(Person))}
    posts = list(s.exec(select(Post).order_by(Post.org_unit_id, Post.id).limit(MAX_ROWS)))

    def name(pid: str | None) -> str:
        return people[pid].name if pid and pid in people else (pid or "")

    out = []
    for r in posts:
        u = units.get(r.org_unit_id)
        holder = people.get(r.person_id)
        out.append({"unit": u.name if u else r.org_unit_id, "unit_id": r.org_unit_id, "kind": u.kind if u else "",
                    "parent": units[u.parent_id].name if u and u.parent_id in units else "",
                    "position": positions.get(r.position_code, r.position_code), "name": name(r.person_id),
                    "mobile": mask_mobile(holder.mobile) if holder else "",
                    "mobile2": mask_mobile(holder.mobile2) if holder and holder.mobile2 else "",
                    "deputy": name(r.deputy_id), "superior": name(r.superior_id),
                    "confirmed_at": holder.contact_confirmed_at if holder else None})
    return out
