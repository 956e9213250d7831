"""Who a call-out plan reaches: plan tiers × the warning's towns → posts, with deputies,
superiors and the duty officers the policies may escalate to (`resolve_targets`), or, for a
publication below orange that asks no answer, the persons alone (`resolve_recipients`). A
directory query, used by the call-out and publication activities and the console's preview."""
from __future__ import annotations

from collections import defaultdict
from datetime import datetime

from sqlalchemy import select as sa_select
from sqlmodel import Session

from definitions.schema.callout import CalloutPlan, Reach
from store.directory import OrgUnit, Person, Position, Post, im_address, post_label
from store.roster import on_duty


def _contact(p: Person | None) -> dict | None:
    return {"person_id": p.id, "name": p.name, "mobile": p.mobile, "im_id": im_address(p)} if p else None


class _Directory:
    """One read of the directory: units, positions, posts per unit, people (and what a scope names)."""

    def __init__(self, s: Session, town_ids: list[str]) -> None:
        # plain rows (the columns as attributes), not ORM objects: a district's whole directory is read, and
        # building an ORM object per person and post was most of a large call-out's resolution
        rows = lambda model: s.execute(sa_select(model.__table__)).all()  # noqa: E731
        self.units: dict[str, OrgUnit] = {u.id: u for u in rows(OrgUnit)}
        self.positions: dict[str, Position] = {p.code: p for p in rows(Position)}
        self.towns = [t for t in town_ids if t in self.units]
        self.posts_by_unit: dict[str, list[Post]] = defaultdict(list)
        for post in rows(Post):
            self.posts_by_unit[post.org_unit_id].append(post)
        self.people: dict[str, Person] = {p.id: p for p in rows(Person)}
        self.gaps: list[dict] = []

    def unit_ids(self, tier: Reach) -> list[str]:
        units, towns = self.units, self.towns
        if tier.scope == "district":
            return [u.id for u in units.values() if u.kind == "district"]
        if tier.scope == "departments":
            missing = [u for u in tier.org_units or [] if u not in units]
            if missing:
                self.gaps.append({"tier": tier.id, "problem": "unknown org units", "org_units": missing})
            return [u for u in tier.org_units or [] if u in units]
        if tier.scope == "area_towns":
            return towns
        return sorted(u.id for u in units.values() if u.kind == "village" and u.parent_id in towns)

    def posts(self, tier: Reach):
        """(unit, position code, post) for every post the tier names; a post nobody holds is a gap."""
        for uid in self.unit_ids(tier):
            for code in tier.positions:
                posts = [p for p in self.posts_by_unit.get(uid, []) if p.position_code == code]
                if not posts:
                    self.gaps.append({"tier": tier.id, "problem": "position not filled", "org_unit": uid, "position": code})
                for post in posts:
                    yield self.units[uid], code, post

    def label(self, unit: OrgUnit, code: str, person: Person) -> str:
        pos = self.positions.get(code)
        return f"{post_label(unit.name, pos.name_zh if pos else code)} {person.name}"

    @staticmethod
    def priority(unit: OrgUnit, leader: bool) -> int:
        return 0 if leader else (10 if unit.kind in ("district", "department") else (20 if unit.kind == "town" else 30))


def resolve_recipients(s: Session, tiers: list[Reach], town_ids: list[str]) -> tuple[list[dict], list[dict]]:
    """Tiers × the warning's area → one entry per person (the first post found names them), for a message that
    asks no answer (精准发布): no deputies, superiors or duty contacts. Returns (recipients, gaps)."""
    d = _Directory(s, town_ids)
    seen: set[str] = set()
    out: list[dict] = []
    for tier in tiers:
        for unit, code, post in d.posts(tier):
            person = d.people[post.person_id]
            if person.id in seen:
                continue
            seen.add(person.id)
            pos = d.positions.get(code)
            out.append(dict(key=f"{tier.id}/{post.id}", tier=tier.id, position=code, org_unit=unit.id,
                            label=d.label(unit, code, person), person=_contact(person),
                            priority=d.priority(unit, bool(pos and pos.leader))))
    return out, d.gaps


def resolve_targets(s: Session, plan: CalloutPlan, town_ids: list[str], tier_ids: list[str],
                    at: datetime) -> tuple[list[dict], list[dict]]:
    """Plan tiers × the warning's area → targets with their deputies, superiors and duty contacts."""
    d = _Directory(s, town_ids)
    units, positions, posts_by_unit, people = d.units, d.positions, d.posts_by_unit, d.people
    duty: dict[str, dict] = {}
    for shift in on_duty(s, at):
        if shift.role not in duty and (c := _contact(s.get(Person, shift.person_id))):
            duty[shift.role] = c

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
        for unit, code, post in d.posts(tier):
            uid = unit.id
            person = people[post.person_id]
            pos = positions.get(code)
            others = {f"position:{c.split(':', 1)[1]}": h for c in wanted if c.startswith("position:")
                      if (h := holder(c.split(":", 1)[1], uid))}
            others.update(duty)
            leader = tier.leaders_first or bool(pos and pos.leader)
            targets.append(dict(
                key=f"{tier.id}/{post.id}", tier=tier.id, position=code, org_unit=uid,
                label=d.label(unit, code, person),
                person=_contact(person), deputy=_contact(people.get(post.deputy_id or "")),
                superior=_contact(people.get(post.superior_id or "")), others=others, policy=tier.policy,
                priority=d.priority(unit, leader)))
    return targets, d.gaps
