"""Warnings as received (JSON or CAP), one row per (sender, identifier), as CAP 1.2 defines uniqueness."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel import Field, SQLModel

from store.types import json_column, now_utc, utc_column


class Warning(SQLModel, table=True):
    __tablename__ = "warning"
    id: str = Field(primary_key=True)
    identifier: str = Field(index=True, description="CAP identifier (or the JSON warning's id): unique per sender only")
    sender: str = ""
    msg_type: str = "Alert"
    references: list[str] = Field(default_factory=list, sa_column=json_column(nullable=False))
    level: str | None = None
    category: str | None = None
    event: str | None = None
    headline: str | None = None
    description: str | None = None
    town_ids: list[str] = Field(default_factory=list, sa_column=json_column(nullable=False))
    area_descs: list[str] = Field(default_factory=list, sa_column=json_column(nullable=False))
    sent_at: datetime | None = Field(default=None, sa_column=utc_column())
    expires_at: datetime | None = Field(default=None, sa_column=utc_column())
    received_at: datetime = Field(default_factory=now_utc, sa_column=utc_column(nullable=False, index=True))
    source: str = "api"
    format: str = "json"
    raw: str | None = None
    callout_id: str | None = Field(default=None, index=True)
    publication_id: str | None = Field(default=None, index=True, description="精准发布 below orange (issue 20)")
    meta: dict[str, Any] = Field(default_factory=dict, sa_column=json_column(nullable=False))
