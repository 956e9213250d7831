"""上报: the city line's posts, each written before it is sent, so that the city platform's receipt (签收) that
comes before we have recorded the report sent is kept, not refused.

The platform may sign for a report within milliseconds of taking our POST, before the activity
(activities/upward.py) has heard its answer and recorded `report.city.sent`. Such a receipt was refused 404 ("never
sent") and, since nothing documents that the platform retries, may have been lost. Now the activity writes a
`CityPost` row (committed) before it posts; the webhook (api/routes/webhooks_cityline.py), finding the row open and
no `report.city.sent`, keeps the receipt on the row (`held`) and answers 200. The activity, in the transaction that
records how the post ended (`report.city.sent`, or `report.city.fallback`; the chain's `report.city.failed`), takes
the row's lock, appends the held receipt right after that event and closes the row (`settle`): the trail reads sent,
then receipt, each once. The row's lock orders the two: the webhook holds on the row or finds the event, never
neither. A receipt for a post never begun (no row), or one that ended without reaching the platform (a closed row
and no `report.city.sent`), is still 404.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel import Field, Session, SQLModel, select

from store.audit import NewEvent
from store.types import json_column, now_utc, utc_column
from workflows.kit.events import Reporting as Kinds


class CityPost(SQLModel, table=True):
    """One version of one report to one upward office (`step`: activities/upward.py step_of), begun and not yet
    recorded sent, or ended (`settled_at`)."""

    __tablename__ = "city_post"
    subject: str = Field(primary_key=True)
    step: str = Field(primary_key=True)
    workflow_id: str | None = None  # the chain's: the held receipt's event id derives from it, like the webhook's
    begun_at: datetime = Field(default_factory=now_utc, sa_column=utc_column(nullable=False))
    settled_at: datetime | None = Field(default=None, sa_column=utc_column())
    held: dict[str, Any] | None = Field(default=None, sa_column=json_column(),
                                        description="a receipt that came before the post was recorded sent: "
                                                    "{actor, at, payload}")


def begin(s: Session, subject: str, step: str, workflow_id: str | None) -> None:
    """The post's row, before the post (kept as it is when a retried activity begins it again)."""
    if s.get(CityPost, (subject, step)) is None:
        s.add(CityPost(subject=subject, step=step, workflow_id=workflow_id))
        s.flush()


def locked(s: Session, subject: str, step: str) -> CityPost | None:
    """The post's row, locked for the transaction (PostgreSQL; SQLite's write transactions run one at a time)."""
    return s.exec(select(CityPost).where(CityPost.subject == subject, CityPost.step == step)
                  .with_for_update()).first()


def hold(post: CityPost, actor: str, at: datetime | None, payload: dict[str, Any]) -> bool:
    """Keep a receipt on an open post until it is recorded sent; False when one is kept already (the first stays:
    the platform signs a version once, a second push of it is the same receipt)."""
    if post.held is not None:
        return False
    post.held = {"actor": actor, "at": at.isoformat() if at else None, "payload": payload}
    return True


BASE = ("to", "name", "report_id", "version", "kind", "label")  # what a receipt's payload repeats of the report's


def settle(s: Session, outcome: NewEvent) -> list[NewEvent]:
    """Close the post, in the transaction that records how it ended (`outcome`: its `report.city.sent`, `.fallback`
    or `.failed`, step `<post's step>/<what>`): the events to append, `outcome` and right after it the receipt held
    for the post, if any (none when the post was settled before: a retry, whose events are stored already)."""
    subject, step = outcome.subject, outcome.step_id.rsplit("/", 1)[0]
    post = locked(s, subject, step)
    if post is None or post.settled_at is not None:
        return [outcome]
    post.settled_at = now_utc()
    s.add(post)
    held = post.held
    if held is None:
        return [outcome]
    # the time the platform gave, else none: the receipt then bears the time of the event before it (it came in
    # between; `arrived_at` in its payload says when)
    return [outcome, NewEvent(
        subject=subject, kind=Kinds.CITY_RECEIPT, step_id=f"{step}/receipt", workflow_id=post.workflow_id,
        actor=held["actor"], channel="cityline", at=datetime.fromisoformat(held["at"]) if held.get("at") else None,
        payload={**{k: outcome.payload.get(k) for k in BASE}, **held["payload"]})]


OUTCOMES = (Kinds.CITY_SENT, Kinds.CITY_FALLBACK, Kinds.CITY_FAILED)  # how a post ends: each settles it


def with_held(s: Session, events: list[NewEvent]) -> list[NewEvent]:
    """`events` to append, each that records how a post ended (`OUTCOMES`) settled (`settle`): followed by the receipt
    held for its post. Events of other kinds pass as they are, with no query."""
    return [x for e in events for x in (settle(s, e) if e.kind in OUTCOMES else [e])]
