"""Who a call-out plan reaches: plan tiers × the warning's towns → posts, with deputies,
superiors and the duty officers the policies may escalate to. A directory query, used by
the call-out activity and by the console's preview alike."""
from __future__ import annotations

from collections import defaultdict
from datetime import datetime

from sqlmodel import Session, select

from definitions.schema.callout import CalloutPlan, Tier
from store.directory import OrgUnit, Person, Position, Post, post_label
from store.roster import on_duty


def _contact(p: Person | None) -> dict | None:
    return {"person_id": p.id, "name": p.name, "mobile": p.mobile, "im_id": p.im_id} if p else None


def resolve_targets(s: Session, plan: CalloutPlan, town_ids: list[str], tier_ids: list[str],
                    at: datetime) -> tuple[list[dict], list[dict]]:
    """Plan tiers × the warning's area → targets with their deputies, superiors and duty contacts."""
    units = {u.id: u for u in s.exec(select(OrgUnit))}
    positions = {p.code: p for p in s.exec(select(Position))}
    towns = [t for t in town_ids if t in units]
    gaps: list[dict] = []
    duty: dict[str, dict] = {}
    for shift in on_duty(s, at):
        if shift.role not in duty and (c := _contact(s.get(Person, shift.person_id))):
            duty[shift.role] = c
    posts_by_unit: dict[str, list[Post]] = defaultdict(list)
    for post in s.exec(select(Post)):
        posts_by_unit[post.org_unit_id].append(post)
    people: dict[str, Person] = {p.id: p for p in s.exec(select(Person))}

    def unit_ids(tier: Tier) -> list[str]:
        if tier.scope == "district":
            return [u.id for u in units.values() if u.kind == "district"]
        if tier.scope == "departments":
            missing = [u for u in tier.org_units or [] if u not in units]
            if missing:
                gaps.append({"tier": tier.id, "problem": "unknown org units", "org_units": missing})
            return [u for u in tier.org_units or [] if u in units]
        if tier.scope == "area_towns":
            return towns
        return sorted(u.id for u in units.values() if u.kind == "village" and u.parent_id in towns)

    def holder(code: str, unit_id: str) -> dict | None:
        unit: OrgUnit | None = units.get(unit_id)
        while unit is not None:  # the same unit first, then up the hierarchy
            for post in posts_by_unit.get(unit.id, []):
                if post.position_code == code:
                    return _contact(people.get(post.person_id))
            unit = units.get(unit.parent_id or "")
        return None

    targets: list[dict] = []
    wanted = set(plan.positions())
    for tier in plan.tiers:
        if tier.id not in tier_ids:
            continue
        for uid in unit_ids(tier):
            unit = units[uid]
            for code in tier.positions:
                posts = [p for p in posts_by_unit.get(uid, []) if p.position_code == code]
                if not posts:
                    gaps.append({"tier": tier.id, "problem": "position not filled", "org_unit": uid, "position": code})
                for post in posts:
                    person = people[post.person_id]
                    pos = positions.get(code)
                    others = {f"position:{c.split(':', 1)[1]}": h for c in wanted if c.startswith("position:")
                              if (h := holder(c.split(":", 1)[1], uid))}
                    others.update(duty)
                    leader = tier.leaders_first or bool(pos and pos.leader)
                    targets.append(dict(
                        key=f"{tier.id}/{post.id}", tier=tier.id, position=code, org_unit=uid,
                        label=f"{post_label(unit.name, pos.name_zh if pos else code)} {person.name}",
                        person=_contact(person), deputy=_contact(people.get(post.deputy_id or "")),
                        superior=_contact(people.get(post.superior_id or "")), others=others, policy=tier.policy,
                        priority=0 if leader else (10 if unit.kind in ("district", "department") else
                                                   (20 if unit.kind == "town" else 30))))
    return targets, gaps
