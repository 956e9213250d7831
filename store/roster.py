"""The duty roster: shifts with the 1+1+X+X roles."""
from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, Session, SQLModel, select

from store.types import utc_column
from workflows.kit.roles import ROLE_NAMES, ROSTER_ROLES

DUTY_ROLES = {role: ROLE_NAMES[role] for role in ROSTER_ROLES}  # the names: workflows/kit/roles.py


class DutyShift(SQLModel, table=True):
    __tablename__ = "duty_shift"
    id: int | None = Field(default=None, primary_key=True)
    starts_at: datetime = Field(sa_column=utc_column(nullable=False, index=True))
    ends_at: datetime = Field(sa_column=utc_column(nullable=False, index=True))
    role: str = Field(index=True)
    person_id: str = Field(foreign_key="person.id", index=True)


def on_duty(session: Session, at: datetime) -> list[DutyShift]:
    return list(
        session.exec(
            select(DutyShift).where(DutyShift.starts_at <= at, DutyShift.ends_at > at).order_by(DutyShift.role, DutyShift.id)
        )
    )


def on_duty_in_role(session: Session, at: datetime, role: str) -> list[DutyShift]:
    return [s for s in on_duty(session, at) if s.role == role]


def overlapping(session: Session, start: datetime, end: datetime) -> list[DutyShift]:
    """The shifts that overlap [start, end), by start."""
    return list(session.exec(select(DutyShift).where(DutyShift.starts_at < end, DutyShift.ends_at > start)
                             .order_by(DutyShift.starts_at, DutyShift.role, DutyShift.id)))
