"""Read model of publications below orange (精准发布): one row per publication, kept by its activities.

Who was sent what, and what the gateway reported, is the outbox (`OutboxMessage.subject` is the publication's
id; `meta` carries the tier and the person's label): `tally` counts it for the summary, the REST answer and the
console alike, so a delivery report that comes after the workflow ended still counts on the page.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel import Field, Session, SQLModel, select

from store.messages import OutboxMessage
from store.types import json_column, now_utc, utc_column
from workflows.kit.events import FAILED_STATUSES


class Publication(SQLModel, table=True):
    __tablename__ = "publication"
    id: str = Field(primary_key=True, description="the workflow id: publication-<warning id>")
    warning_id: str = Field(index=True)
    plan_id: str
    plan_version: str = ""
    level: str
    purpose: str = Field(default="publish", description="publish | update | cancel")
    title: str = ""
    drill: bool = False
    status: str = Field(default="running", index=True,
                        description="running | completed (every message final) | timed_out | superseded")
    superseded_by: str | None = None
    counts: dict[str, Any] = Field(default_factory=dict, sa_column=json_column(nullable=False))
    started_at: datetime = Field(default_factory=now_utc, sa_column=utc_column(nullable=False))
    ended_at: datetime | None = Field(default=None, sa_column=utc_column())


def messages(s: Session, publication_id: str) -> list[OutboxMessage]:
    return list(s.exec(select(OutboxMessage).where(OutboxMessage.subject == publication_id).order_by(OutboxMessage.id)))


def tally(rows: list[OutboxMessage]) -> dict[str, Any]:
    """Messages sent, delivered, failed (by name) and the delivery rate (delivered / sent), overall and per tier."""
    per_tier: dict[str, dict[str, Any]] = {}
    persons: set[str] = set()
    failed: list[dict[str, Any]] = []
    for m in rows:
        meta = m.meta or {}
        tier = per_tier.setdefault(meta.get("tier") or "", {"name_zh": meta.get("tier_zh") or "", "persons": set(),
                                                           "sent": 0, "delivered": 0, "failed": 0})
        tier["persons"].add(m.person_id)
        persons.add(m.person_id or "")
        tier["sent"] += 1
        if m.status == "delivered":
            tier["delivered"] += 1
        elif m.status in FAILED_STATUSES:
            tier["failed"] += 1
            failed.append({"person_id": m.person_id, "name": meta.get("label") or m.person_id, "tier": meta.get("tier"),
                           "channel": m.channel, "status": m.status, "error": m.error})
    for t in per_tier.values():
        t["persons"] = len(t["persons"])
        t["rate"] = round(t["delivered"] / t["sent"], 4) if t["sent"] else None
    sent = len(rows)
    delivered = sum(t["delivered"] for t in per_tier.values())
    return {"persons": len(persons), "sent": sent, "delivered": delivered, "failed": len(failed),
            "pending": sent - delivered - len(failed), "rate": round(delivered / sent, 4) if sent else None,
            "per_tier": per_tier, "failed_list": failed}
