"""Response proposals 响应建议 (预警和响应一体化): the read model of ResponseProposalWorkflow.

The workflow is the source of truth while it runs and the audit chain (`proposal/<id>`) the record that
lasts; this row lets the API, the desk's 待我处理 and the link page answer fast. Also here: the signed
link that lets the leading leader answer from the SMS (bound to one person and one proposal, usable once).
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel import Field, SQLModel

from store.links import make_ack_token, read_ack_token
from store.types import json_column, now_utc, utc_column

LINK_SALT = "yingji.proposal-link"
LINK_MAX_AGE = 2 * 86400
OPEN = ("proposed",)


class Proposal(SQLModel, table=True):
    __tablename__ = "proposal"
    id: str = Field(primary_key=True, description="<warning id>-<plan id>")
    workflow_id: str = Field(index=True)
    warning_id: str = Field(index=True)
    callout_id: str | None = Field(default=None, index=True)
    plan_id: str
    plan_name: str = ""
    level: str = Field(description="the response level proposed: I … IV")
    status: str = Field(default="proposed", index=True, description="proposed | accepted | declined | expired")
    leader_id: str | None = Field(default=None, index=True)
    leader_name: str = ""
    decided_by: str | None = None
    decided_at: datetime | None = Field(default=None, sa_column=utc_column())
    reason: str = ""
    incident_id: str | None = None
    activation_id: str | None = None
    created_at: datetime = Field(default_factory=now_utc, sa_column=utc_column(nullable=False, index=True))
    updated_at: datetime = Field(default_factory=now_utc, sa_column=utc_column(nullable=False))
    view: dict[str, Any] = Field(default_factory=dict, sa_column=json_column(nullable=False))


def make_link_token(key: str, proposal_id: str, person_id: str) -> str:
    """The signed link in the proposal's SMS/IM: this proposal, this person (a one-time link, its own salt)."""
    return make_ack_token(key, proposal_id, person_id, salt=LINK_SALT)


def read_link_token(key: str, token: str, max_age: int = LINK_MAX_AGE) -> dict:
    return read_ack_token(key, token, max_age, salt=LINK_SALT)
