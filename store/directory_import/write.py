"""Writing a checked directory: upserts by id, the posts of each org unit in the file replacing its
posts, and the duty roster's shifts."""
from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlmodel import Session, delete, select

from store.directory import OrgUnit, Person, Position, Post, normalize_mobile
from store.directory_import.model import POSITIONS, DirectoryIn, ImportReport, PostIn, RosterIn
from store.roster import DutyShift


def _upsert(session: Session, cls, key: str, values: dict) -> bool:
    row = session.get(cls, values[key])
    if row is None:
        session.add(cls(**values))
        return True
    changed = False
    for k, v in values.items():
        if getattr(row, k) != v:
            setattr(row, k, v)
            changed = True
    return changed


def _write(session: Session, d: DirectoryIn, phones: dict, today: date, tz: str) -> ImportReport:
    changed = dict.fromkeys(("org_units", "persons", "positions", "posts", "shifts"), 0)
    in_file = {p.code for p in d.positions}
    for p in POSITIONS:  # built-ins the database lacks; the file's own positions win
        if p.code not in in_file and session.get(Position, p.code) is None:
            changed["positions"] += _upsert(session, Position, "code", p.model_dump())
    for p in d.positions:
        changed["positions"] += _upsert(session, Position, "code", p.model_dump())
    order = {"district": 0, "department": 1, "town": 1, "village": 2}
    for u in sorted(d.org_units, key=lambda u: order[u.kind]):  # parents first
        changed["org_units"] += _upsert(session, OrgUnit, "id", {
            "id": u.id, "name": u.name, "kind": u.kind, "parent_id": u.parent,
            "area_code": u.area_code or (u.id if u.id.isdigit() else None), "vertical_line": u.vertical_line,
            **({"duty_phone": normalize_mobile(u.duty_phone)} if u.duty_phone else {})})
        session.flush()
    for p in d.persons:
        confirmed = datetime.combine(p.contact_confirmed, time(), ZoneInfo(tz)) if p.contact_confirmed else None
        mobile, mobile2 = phones[p.id]
        changed["persons"] += _upsert(session, Person, "id", {
            "id": p.id, "name": p.name, "mobile": mobile, "mobile2": mobile2, "im_id": p.im_id,
            "dingtalk_user_id": p.dingtalk_user_id,
            "org_unit_id": p.org_unit, "contact_confirmed_at": confirmed,
            **({"language": p.language} if p.language else {})})
    session.flush()
    by_unit: dict[str, list[PostIn]] = {}
    for post in d.posts:
        by_unit.setdefault(post.org_unit, []).append(post)
    for unit_id, posts in by_unit.items():
        want = sorted((p.position, p.person, p.deputy or "", p.superior or "") for p in posts)
        have = sorted((p.position_code, p.person_id, p.deputy_id or "", p.superior_id or "")
                      for p in session.exec(select(Post).where(Post.org_unit_id == unit_id)))
        if want != have:
            session.exec(delete(Post).where(Post.org_unit_id == unit_id))
            for position, person, deputy, superior in want:
                session.add(Post(position_code=position, org_unit_id=unit_id, person_id=person,
                                 deputy_id=deputy or None, superior_id=superior or None))
            changed["posts"] += len(want)
    shifts = 0
    if d.roster:
        shifts, changed["shifts"] = _roster(session, d.roster, today, tz)
    session.flush()
    return ImportReport(org_units=len(d.org_units), persons=len(d.persons), positions=len(d.positions),
                        posts=len(d.posts), shifts=shifts, changed=changed)


def _roster(session: Session, r: RosterIn, today: date, tz: str) -> tuple[int, int]:
    """24-hour shifts from `today` for `days` days; day i takes entry i mod len of each role.

    Shifts starting in that window are replaced; returns (shifts, shifts written).
    """
    start = datetime.combine(today, time.fromisoformat(r.shift_start), ZoneInfo(tz))
    end = start + timedelta(days=r.days)
    want = set()
    for day in range(r.days):
        s = start + timedelta(days=day)
        for role, entries in r.rotation.items():
            entry = entries[day % len(entries)]
            want |= {(s, role, pid) for pid in ([entry] if isinstance(entry, str) else entry)}
    window = (DutyShift.starts_at >= start, DutyShift.starts_at < end)
    have = {(x.starts_at, x.role, x.person_id) for x in session.exec(select(DutyShift).where(*window))}
    if have == want:
        return len(want), 0
    session.exec(delete(DutyShift).where(*window))
    for s, role, pid in sorted(want):
        session.add(DutyShift(starts_at=s, ends_at=s + timedelta(days=1), role=role, person_id=pid))
    return len(want), len(want)
