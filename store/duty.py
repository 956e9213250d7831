"""Read models of the duty day: handovers, drill runs, 六问 spot checks, contact confirmation rounds.

The workflows are the source of truth while they run and the audit chain is the
record that lasts; these rows let the API, the CLI and the console answer fast.
Also here: the signed contact-confirmation links, each person's contact freshness
(last confirmed, failing numbers), and the call-out statistics that leave drills out.
"""
from __future__ import annotations

import secrets
import statistics
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy import UniqueConstraint
from sqlmodel import Field, Session, SQLModel, col, func, select

from store.callouts import Callout, CalloutTarget
from store.directory import Person
from store.links import LinkError
from store.messages import OutboxMessage
from store.resources import confirm_register
from store.types import json_column, now_utc, utc_column
from workflows.kit.events import BOUNCE_STATUSES

# ------------------------------------------------------------------ shift handover 交接班


class Handover(SQLModel, table=True):
    __tablename__ = "handover"
    id: str = Field(primary_key=True, description="the workflow id")
    shift_at: datetime = Field(sa_column=utc_column(nullable=False, index=True))
    outgoing_id: str | None = None
    outgoing_name: str = ""
    incoming_id: str | None = Field(default=None, index=True)
    incoming_name: str = ""
    leader_id: str | None = None
    leader_name: str = ""
    status: str = Field(default="open", index=True,
                        description="open | handed_over | taken_over | not_taken_over | skipped")
    note: dict[str, Any] = Field(default_factory=dict, sa_column=json_column(nullable=False),
                                 description="items filled in automatically, text written by hand")
    due_at: datetime | None = Field(default=None, sa_column=utc_column())
    handed_over_at: datetime | None = Field(default=None, sa_column=utc_column())
    taken_over_at: datetime | None = Field(default=None, sa_column=utc_column())
    taken_over_by: str | None = None
    taken_over_via: str | None = None
    escalated_at: datetime | None = Field(default=None, sa_column=utc_column())
    leader_ack_at: datetime | None = Field(default=None, sa_column=utc_column())
    leader_ack_by: str | None = None
    opened_at: datetime = Field(default_factory=now_utc, sa_column=utc_column(nullable=False))
    closed_at: datetime | None = Field(default=None, sa_column=utc_column())
    updated_at: datetime = Field(default_factory=now_utc, sa_column=utc_column(nullable=False))


# ------------------------------------------------------------------ drills 演练


class DrillRun(SQLModel, table=True):
    __tablename__ = "drill_run"
    id: str = Field(primary_key=True, description="the drill workflow id")
    drill_id: str = Field(index=True)
    name: str = ""
    counts_as: str = ""
    callout_id: str = Field(index=True)
    trigger: str = Field(default="schedule", description="schedule | manual")
    status: str = Field(default="running", index=True, description="running | reported")
    window_s: int = 1800
    sample: dict[str, Any] = Field(default_factory=dict, sa_column=json_column(nullable=False))
    started_at: datetime = Field(default_factory=now_utc, sa_column=utc_column(nullable=False, index=True))
    ended_at: datetime | None = Field(default=None, sa_column=utc_column())
    total: int = 0
    responded: int = Field(default=0, description="acknowledged within the window")
    acknowledged: int = Field(default=0, description="acknowledged at all")
    rate: float | None = Field(default=None, description="responded / total")
    report: dict[str, Any] = Field(default_factory=dict, sa_column=json_column(nullable=False))


# ------------------------------------------------------------------ 六问 spot checks


class SpotCheck(SQLModel, table=True):
    __tablename__ = "spot_check"
    id: str = Field(primary_key=True, description="the workflow id")
    callout_id: str = Field(index=True, unique=True)
    title: str = ""
    level: str = ""
    status: str = Field(default="running", index=True, description="running | closed | skipped")
    reason: str = ""
    questions: list[dict[str, Any]] = Field(default_factory=list, sa_column=json_column(nullable=False))
    opened_at: datetime = Field(default_factory=now_utc, sa_column=utc_column(nullable=False, index=True))
    closed_at: datetime | None = Field(default=None, sa_column=utc_column())
    updated_at: datetime = Field(default_factory=now_utc, sa_column=utc_column(nullable=False))


class SpotCheckAnswer(SQLModel, table=True):
    __tablename__ = "spot_check_answer"
    __table_args__ = (UniqueConstraint("check_id", "person_id", name="uq_spot_check_answer"),)
    id: int | None = Field(default=None, primary_key=True)
    check_id: str = Field(foreign_key="spot_check.id", index=True)
    person_id: str = Field(index=True)
    name: str = ""
    village_id: str = ""
    town_id: str = ""
    label: str = ""
    state: str = Field(default="pending", description="pending | called | answered | unreachable")
    answers: dict[str, bool] | None = Field(default=None, sa_column=json_column())
    channel: str | None = None
    answered_at: datetime | None = Field(default=None, sa_column=utc_column())
    answered_by: str | None = None
    attempts: list[dict[str, Any]] = Field(default_factory=list, sa_column=json_column(nullable=False))
    updated_at: datetime = Field(default_factory=now_utc, sa_column=utc_column(nullable=False))


class SpotCheckFollowup(SQLModel, table=True):
    __tablename__ = "spot_check_followup"
    __table_args__ = (UniqueConstraint("check_id", "key", name="uq_spot_check_followup"),)
    id: int | None = Field(default=None, primary_key=True)
    check_id: str = Field(foreign_key="spot_check.id", index=True)
    key: str
    town_id: str = Field(index=True)
    town_name: str = ""
    about_person_id: str = ""
    about_name: str = ""
    failed: list[str] = Field(default_factory=list, sa_column=json_column(nullable=False), description="question ids answered no")
    responsible_id: str | None = None
    responsible_name: str = ""
    due_at: datetime = Field(sa_column=utc_column(nullable=False, index=True))
    status: str = Field(default="open", index=True, description="open | acknowledged | resolved | unresolved")
    overdue: bool = False
    acknowledged_at: datetime | None = Field(default=None, sa_column=utc_column())
    acknowledged_by: str | None = None
    acknowledged_via: str | None = None
    resolved_at: datetime | None = Field(default=None, sa_column=utc_column())
    resolved_by: str | None = None
    resolution: str | None = None
    opened_at: datetime = Field(default_factory=now_utc, sa_column=utc_column(nullable=False))
    updated_at: datetime = Field(default_factory=now_utc, sa_column=utc_column(nullable=False))


# ------------------------------------------------------------------ contact freshness


class FreshnessRound(SQLModel, table=True):
    __tablename__ = "freshness_round"
    id: str = Field(primary_key=True, description="the workflow id, e.g. freshness-2027")
    year: int = Field(index=True)
    status: str = Field(default="running", index=True, description="running | closed")
    started_at: datetime = Field(default_factory=now_utc, sa_column=utc_column(nullable=False))
    deadline: datetime = Field(sa_column=utc_column(nullable=False))
    closed_at: datetime | None = Field(default=None, sa_column=utc_column())
    total: int = 0
    confirmed: int = 0
    unconfirmed: int = 0
    bounced: int = 0


class ContactCheck(SQLModel, table=True):
    """One person in a confirmation round."""

    __tablename__ = "contact_check"
    __table_args__ = (UniqueConstraint("round_id", "person_id", name="uq_contact_check"),)
    id: int | None = Field(default=None, primary_key=True)
    round_id: str = Field(foreign_key="freshness_round.id", index=True)
    person_id: str = Field(index=True)
    name: str = ""
    shard: int = 0
    state: str = Field(default="pending", index=True, description="pending | asked | confirmed | unconfirmed")
    sends: int = 0
    asked_at: datetime | None = Field(default=None, sa_column=utc_column())
    confirmed_at: datetime | None = Field(default=None, sa_column=utc_column())
    confirmed_via: str | None = None
    bounced: bool = Field(default=False, index=True)
    last_error: str | None = None
    spec: dict[str, Any] = Field(default_factory=dict, sa_column=json_column(nullable=False))
    updated_at: datetime = Field(default_factory=now_utc, sa_column=utc_column(nullable=False))


CONFIRM_SALT = "yingji.contact-confirm"
FORM_SALT = "yingji.spotcheck-form"
FAILING = BOUNCE_STATUSES  # a number bounces: defined once, with the event kinds (workflows/kit/events.py)


def _signed(key: str, salt: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(key, salt=salt)  # a salt per kind: an ack link is no confirm link, nor a form


def make_confirm_token(key: str, round_id: str, person_id: str) -> str:
    return _signed(key, CONFIRM_SALT).dumps({"s": round_id, "p": person_id, "j": secrets.token_urlsafe(9)})


def make_form_token(key: str, check_id: str, person_id: str) -> str:
    return _signed(key, FORM_SALT).dumps({"s": check_id, "p": person_id, "j": secrets.token_urlsafe(9)})


def read_token(key: str, token: str, max_age: int, salt: str = CONFIRM_SALT) -> dict:
    try:
        data = _signed(key, salt).loads(token, max_age=max_age)
    except SignatureExpired as exc:
        raise LinkError("expired", "this link has expired / 链接已过期") from exc
    except BadSignature as exc:
        raise LinkError("invalid", "this link is not valid / 链接无效") from exc
    if not isinstance(data, dict) or not {"s", "p", "j"} <= data.keys():
        raise LinkError("invalid", "this link is not valid / 链接无效")
    return data


def confirm_contact(s: Session, round_id: str, person_id: str, at: datetime, via: str) -> bool:
    """Record a confirmation (idempotent): the person's last-confirmed date, the round's row, and the
    last-confirmed date of the register records they answer for (store/resources.py OWNER)."""
    p = s.get(Person, person_id)
    if p is None:
        return False
    if p.contact_confirmed_at is None or p.contact_confirmed_at < at:
        p.contact_confirmed_at = at
    confirm_register(s, person_id, at)  # the register's records they answer for, confirmed with their contact data
    row = s.exec(select(ContactCheck).where(ContactCheck.round_id == round_id, ContactCheck.person_id == person_id)).first()
    if row is not None and row.state != "confirmed":
        row.state, row.confirmed_at, row.confirmed_via, row.updated_at = "confirmed", at, via, now_utc()
        if via in ("sms", "link"):
            row.bounced, row.last_error = False, None  # it reached them
    return True


def contact_status(s: Session, person_ids: Iterable[str], at: datetime, stale_after: timedelta,
                   failing_window: timedelta) -> dict[str, dict[str, Any]]:
    """Per person: when their contact data was last confirmed, whether that is stale, and whether
    their mobile is failing (the latest final outcome of a send to it was failed/undelivered/opted out)."""
    ids = sorted(set(person_ids))
    out: dict[str, dict[str, Any]] = {}
    numbers: dict[str, tuple[str, str | None]] = {}
    for i in range(0, len(ids), 500):  # columns, not ORM objects: a directory of 10,000 persons is read whole
        for pid, name, mobile, mobile2, confirmed in s.exec(
                select(Person.id, Person.name, Person.mobile, Person.mobile2, Person.contact_confirmed_at)
                .where(col(Person.id).in_(ids[i:i + 500]))):
            numbers[pid] = (mobile, mobile2)
            out[pid] = {"person_id": pid, "name": name, "confirmed_at": confirmed,
                        "stale": confirmed is None or confirmed < at - stale_after, "failing": False, "error": None}
    for pid in ids:
        out.setdefault(pid, {"person_id": pid, "name": "", "confirmed_at": None, "stale": True, "failing": False,
                             "error": None})
    since = at - failing_window
    good = ("delivered", "answered", "completed")  # "sent" proves nothing yet
    whole = len(ids) > 2000  # a directory's worth: one pass over the window beats thousands of IN lists
    for i in range(0, len(ids), len(ids) if whole else 500):
        chunk = ids[i:i + 500]
        # the latest telling outcome of each (person, number): failed, or reached
        latest = (select(func.max(OutboxMessage.id))
                  .where(OutboxMessage.created_at >= since, col(OutboxMessage.channel).in_(["sms", "voice"]),
                         col(OutboxMessage.status).in_([*FAILING, *good]),
                         col(OutboxMessage.person_id).is_not(None) if whole else col(OutboxMessage.person_id).in_(chunk))
                  .group_by(OutboxMessage.person_id, OutboxMessage.to))
        rows = s.exec(select(OutboxMessage.person_id, OutboxMessage.to, OutboxMessage.status, OutboxMessage.error)
                      .where(col(OutboxMessage.id).in_(latest)).order_by(col(OutboxMessage.id)))
        for pid, to, status, error in rows:  # in the order they happened: the last word on either number wins
            if pid not in numbers or to not in numbers[pid]:
                continue  # an old number: what happened to it says nothing of the current one
            if status in FAILING:
                out[pid].update(failing=True, error=error or status)
            else:
                out[pid].update(failing=False, error=None)
    return out


# ------------------------------------------------------------------ statistics: drills never count


def real_callouts():
    """The filter every statistic of call-outs uses: drills are not call-outs."""
    return col(Callout.drill).is_(False)


def callout_statistics(s: Session, since: datetime | None = None, until: datetime | None = None) -> dict[str, Any]:
    """Real call-outs in a period: how many, whom they reached, who answered and how fast. Drills apart."""
    stmt = select(Callout).where(real_callouts())
    if since is not None:
        stmt = stmt.where(Callout.started_at >= since)
    if until is not None:
        stmt = stmt.where(Callout.started_at < until)
    callouts = list(s.exec(stmt))
    ids = [c.id for c in callouts]
    total = acked = 0
    delays: list[float] = []
    by_level: dict[str, int] = {}
    for c in callouts:
        by_level[c.level] = by_level.get(c.level, 0) + 1
    for i in range(0, len(ids), 500):
        for t in s.exec(select(CalloutTarget).where(col(CalloutTarget.callout_id).in_(ids[i:i + 500]))):
            total += 1
            if t.acknowledged_at:
                acked += 1
                first = min((datetime.fromisoformat(a["at"]) for a in t.attempts if a.get("purpose") == "notify"),
                            default=None)
                if first is not None:
                    delays.append(max((t.acknowledged_at - first).total_seconds(), 0.0))
    drills = s.exec(select(func.count()).select_from(Callout).where(col(Callout.drill).is_(True))
                    .where(*([Callout.started_at >= since] if since else []))
                    .where(*([Callout.started_at < until] if until else []))).one()
    return {"callouts": len(callouts), "by_level": by_level, "targets": total, "acknowledged": acked,
            "rate": round(acked / total, 4) if total else None,
            "median_ack_s": statistics.median(delays) if delays else None,
            "drills_left_out": drills}


def drill_statistics(s: Session, since: datetime | None = None) -> dict[str, Any]:
    stmt = select(DrillRun).where(DrillRun.status == "reported")
    if since is not None:
        stmt = stmt.where(DrillRun.started_at >= since)
    runs = list(s.exec(stmt))
    per: dict[str, dict[str, Any]] = {}
    for r in runs:
        d = per.setdefault(r.drill_id, {"drill_id": r.drill_id, "name": r.name, "runs": 0, "total": 0, "responded": 0})
        d["runs"] += 1
        d["total"] += r.total
        d["responded"] += r.responded
    for d in per.values():
        d["rate"] = round(d["responded"] / d["total"], 4) if d["total"] else None
    return {"runs": len(runs), "drills": sorted(per.values(), key=lambda d: d["drill_id"])}
