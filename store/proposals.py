"""Response proposals 响应建议 (预警和响应一体化): the read model of ResponseProposalWorkflow.

The workflow is the source of truth while it runs and the audit chain (`proposal/<id>`) the record that
lasts; this row lets the API, the desk's 待我处理 and the link page answer fast. Also here: the signed
link that lets the leading leader answer from the SMS (bound to one person and one proposal, usable once).
"""
from __future__ import annotations

import secrets
from datetime import datetime
from typing import Any

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlmodel import Field, SQLModel

from store.links import LinkError
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


def _serializer(key: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(key, salt=LINK_SALT)


def make_link_token(key: str, proposal_id: str, person_id: str) -> str:
    """The signed link in the proposal's SMS/IM: this proposal, this person (`j`: the one-time id)."""
    return _serializer(key).dumps({"s": proposal_id, "p": person_id, "j": secrets.token_urlsafe(9)})


def read_link_token(key: str, token: str, max_age: int = LINK_MAX_AGE) -> dict:
    try:
        data = _serializer(key).loads(token, max_age=max_age)
    except SignatureExpired as exc:
        raise LinkError("expired", "链接已过期 / this link has expired") from exc
    except BadSignature as exc:
        raise LinkError("invalid", "链接无效 / this link is not valid") from exc
    if not isinstance(data, dict) or not {"s", "p", "j"} <= data.keys():
        raise LinkError("invalid", "链接无效 / this link is not valid")
    return data
