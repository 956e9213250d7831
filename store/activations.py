"""Plan activations 分级响应: the read model kept by the activation workflow's activities.

`PlanActivationWorkflow` is the source of truth while it runs and the audit chain
(subject ``activation/<id>``) is the record that lasts; these rows let
`GET /api/activations` answer without asking Temporal, also after the response ended.

- `Activation`: one activation of a plan for an incident: level, status, and the whole
  latest view (commanders and their acknowledgement, groups, tasks, directives,
  dispatches, reinforcement requests) as JSON.
- `ActivationItem`: each standing task and directive with its deadline and state, so the
  duty desk can list what is overdue across every running response.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import UniqueConstraint
from sqlmodel import Field, Session, SQLModel, col, select

from store.directory import OrgUnit, Person, Position, Post, im_address
from store.types import json_column, now_utc, utc_column


class Activation(SQLModel, table=True):
    __tablename__ = "activation"
    id: str = Field(primary_key=True, description="<incident id>-<plan id>")
    workflow_id: str = Field(index=True)
    incident_id: str = Field(index=True)
    plan_id: str = Field(index=True)
    plan_version: str
    plan_name: str = ""
    level: str = Field(description="I 特别重大 … IV 一般")
    status: str = Field(default="active", index=True, description="active | terminated")
    reason: str = ""
    activated_by: str
    activated_at: datetime = Field(sa_column=utc_column(nullable=False, index=True))
    terminated_at: datetime | None = Field(default=None, sa_column=utc_column())
    terminated_by: str | None = None
    review_workflow_id: str | None = None
    view: dict[str, Any] = Field(default_factory=dict, sa_column=json_column(nullable=False))
    updated_at: datetime = Field(default_factory=now_utc, sa_column=utc_column(nullable=False))


class ActivationItem(SQLModel, table=True):
    __tablename__ = "activation_item"
    __table_args__ = (UniqueConstraint("activation_id", "item_id", name="uq_activation_item"),)
    id: int | None = Field(default=None, primary_key=True)
    activation_id: str = Field(foreign_key="activation.id", index=True)
    item_id: str = Field(description="T-<task> or D<n>")
    kind: str = Field(description="task | directive")
    title: str = ""
    group_id: str | None = None
    unit_id: str | None = None
    assignee: str = ""
    assignee_person_id: str | None = Field(default=None, index=True)
    due_at: datetime = Field(sa_column=utc_column(nullable=False, index=True))
    state: str = Field(default="open", index=True)
    acknowledged_at: datetime | None = Field(default=None, sa_column=utc_column())
    reported_at: datetime | None = Field(default=None, sa_column=utc_column())
    overdue_at: datetime | None = Field(default=None, sa_column=utc_column())
    late_by_s: int | None = None
    updated_at: datetime = Field(default_factory=now_utc, sa_column=utc_column(nullable=False))


def upsert(s: Session, view: dict[str, Any], plan_version: str) -> Activation:
    """Write the activation and its items from the workflow's view (a JSON dict of ActivationView)."""
    now = now_utc()
    row = s.get(Activation, view["activation_id"])
    if row is None:
        row = Activation(id=view["activation_id"], workflow_id=view["workflow_id"], incident_id=view["incident_id"],
                         plan_id=view["plan_id"], plan_version=plan_version, plan_name=view["plan_name"],
                         level=view["level"], reason=view["reason"], activated_by=view["activated_by"],
                         activated_at=datetime.fromisoformat(view["activated_at"]))
        s.add(row)
    row.level, row.status, row.view, row.updated_at = view["level"], view["status"], view, now
    row.terminated_at = datetime.fromisoformat(view["terminated_at"]) if view.get("terminated_at") else None
    row.terminated_by, row.review_workflow_id = view.get("terminated_by"), view.get("review_workflow_id")
    s.flush()
    items = {i.item_id: i for i in s.exec(select(ActivationItem).where(ActivationItem.activation_id == row.id))}
    for it in [*view["tasks"], *view["directives"]]:
        r = items.get(it["id"]) or ActivationItem(activation_id=row.id, item_id=it["id"], kind=it["kind"],
                                                  due_at=datetime.fromisoformat(it["due_at"]))
        person = (it.get("assignee") or {}).get("person") or {}
        r.title, r.group_id, r.unit_id = it["title"], it.get("group"), it.get("unit")
        r.assignee, r.assignee_person_id = (it.get("assignee") or {}).get("label", ""), person.get("person_id")
        r.due_at, r.state, r.late_by_s = datetime.fromisoformat(it["due_at"]), it["state"], it.get("late_by_s")
        for f in ("acknowledged_at", "reported_at", "overdue_at"):
            setattr(r, f, datetime.fromisoformat(it[f]) if it.get(f) else None)
        r.updated_at = now
        s.add(r)
    return row


def get(s: Session, activation_id: str) -> Activation | None:
    return s.get(Activation, activation_id)


def listing(s: Session, limit: int = 100, status: str | None = None, incident_id: str | None = None,
            dates: Any = None) -> list[Activation]:
    """`dates`: an api.services.dates.DateRange (or anything with `.where(stmt, column)`) on activated_at."""
    stmt = select(Activation).order_by(col(Activation.activated_at).desc()).limit(limit)
    if dates is not None:
        stmt = dates.where(stmt, col(Activation.activated_at))
    if status:
        stmt = stmt.where(Activation.status == status)
    if incident_id:
        stmt = stmt.where(Activation.incident_id == incident_id)
    return list(s.exec(stmt))


def open_items(s: Session, activation_ids: list[str]) -> list[ActivationItem]:
    if not activation_ids:
        return []
    return list(s.exec(select(ActivationItem).where(col(ActivationItem.activation_id).in_(activation_ids))
                       .order_by(ActivationItem.due_at)))


# ------------------------------------------------------------------ who holds a plan's posts


def _contact(p: Person | None) -> dict | None:
    return {"person_id": p.id, "name": p.name, "mobile": p.mobile, "im_id": im_address(p)} if p else None


class PostHolders:
    """The directory's posts of some positions, to find who holds `position@org_unit` (district level first)."""

    def __init__(self, s: Session, codes: set[str]):
        self.s = s
        self.units = {u.id: u for u in s.exec(select(OrgUnit))}
        self.positions = {p.code: p for p in s.exec(select(Position).where(col(Position.code).in_(codes)))}
        self.posts = list(s.exec(select(Post).where(col(Post.position_code).in_(codes)).order_by(Post.id)))

    def holder(self, key: str, position: str, unit_id: str | None) -> dict:
        """{key, position, org_unit, unit_name, label, person, deputy, superior}; person None when nobody holds it."""
        posts = [p for p in self.posts if p.position_code == position and (unit_id is None or p.org_unit_id == unit_id)]
        if unit_id is None:
            posts.sort(key=lambda p: (self.units.get(p.org_unit_id) is None or self.units[p.org_unit_id].kind != "district",
                                      p.id))
        pos = self.positions.get(position)
        unit = self.units.get(posts[0].org_unit_id if posts else (unit_id or ""))
        title = pos.name_zh if pos else position
        place = unit.name if unit else (unit_id or "")
        where = title if place and title.startswith(place) else f"{place}{title.removeprefix('部门')}"
        out = {"key": key, "position": position, "org_unit": unit_id, "unit_name": unit.name if unit else "",
               "label": where, "person": None, "deputy": None, "superior": None}
        if posts:
            post = posts[0]
            person = _contact(self.s.get(Person, post.person_id))
            out.update(org_unit=post.org_unit_id, label=f"{where} {person['name'] if person else ''}".strip(), person=person,
                       deputy=_contact(self.s.get(Person, post.deputy_id)) if post.deputy_id else None,
                       superior=_contact(self.s.get(Person, post.superior_id)) if post.superior_id else None)
        return out
