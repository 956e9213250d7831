"""The message log as the duty office reads it: every message sent (the outbox), newest first, with the
person's name, the subject it belongs to (its kind, title and page), the number masked, and why it failed;
filtered by person or number, channel, status, subject and local dates; a page at a time. The console's
page and its Excel export call `message_log`; run with a database session."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from collections.abc import Mapping
from typing import Any

from sqlalchemy import or_
from sqlmodel import Session, col, func, select

from api.security import masked_message
from api.services.dates import DateRange, local_range
from api.services.errors import ServiceError
from store.callouts import Callout
from store.directory import Person, mask_mobile
from store.incidents import Incident
from store.messages import OUT_STATES, OutboxMessage
from workflows.subjects import kind_of

PAGE = 50
CHANNELS = ("sms", "voice", "im", "email")
STATUSES = (*OUT_STATES, "sending", "queued")
# where a subject's page is, by its kind (workflows/subjects.py), given the subject without its "<kind>/" prefix
# (`review/<incident id>` → the incident id); kinds without a page have no link
PAGES = {"callout": "/console/callouts/{}", "publication": "/console/publications/{}", "incident": "/console/incidents/{}",
         "drill": "/console/drills/{}", "handover": "/console/handovers/{}", "workorder": "/console/workorders/{}",
         "activation": "/console/activations/{}", "review": "/console/reviews/{}", "bulletin": "/console/bulletins/{}",
         "proposal": "/console/proposals/{}"}


class MessageLogError(ServiceError):
    """A message log filter that cannot be applied."""


@dataclass
class LogFilter:
    who: str = ""  # part of a name, or digits of a number
    channel: str = ""
    status: str = ""
    subject: str = ""  # part of a subject id
    dates: DateRange = field(default_factory=DateRange)

    def check(self) -> LogFilter:
        if self.channel and self.channel not in CHANNELS:
            raise MessageLogError(422, f"渠道无效:{self.channel[:20]} / channel: one of {', '.join(CHANNELS)}")
        if self.status and self.status not in STATUSES:
            raise MessageLogError(422, f"状态无效:{self.status[:20]} / status: one of {', '.join(STATUSES)}")
        self.who, self.subject = self.who.strip()[:100], self.subject.strip()[:200]
        return self


FILTERS = ("who", "channel", "status", "subject", "date_from", "date_to")


def filter_from(params: Mapping[str, Any]) -> tuple[LogFilter, dict[str, str]]:
    """The filters from a query (the page's form and the export link pass the same) and those given, as
    strings. Raises ServiceError 422 for a malformed date, channel or status."""
    q = {k: str(params.get(k) or "").strip()[:200] for k in FILTERS}
    f = LogFilter(who=q["who"], channel=q["channel"], status=q["status"], subject=q["subject"],
                  dates=local_range(q["date_from"], q["date_to"]))
    return f.check(), {k: v for k, v in q.items() if v}


def digits_of(text: str) -> str:
    """The digits of a number as typed (`139 0000-0405` → `13900000405`); '' for a name."""
    return re.sub(r"[\s\-+()]", "", text) if re.fullmatch(r"[\d\s\-+()]+", text or "") else ""


def like_pattern(text: str) -> str:
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _statement(s: Session, f: LogFilter):
    stmt = select(OutboxMessage)
    if f.channel:
        stmt = stmt.where(OutboxMessage.channel == f.channel)
    if f.status:
        stmt = stmt.where(OutboxMessage.status == f.status)
    if f.subject:
        stmt = stmt.where(col(OutboxMessage.subject).like(like_pattern(f.subject), escape="\\"))
    if f.who:
        digits = digits_of(f.who)
        if digits:
            stmt = stmt.where(col(OutboxMessage.to).like(like_pattern(digits), escape="\\"))
        else:
            ids = list(s.exec(select(Person.id).where(or_(col(Person.name).like(like_pattern(f.who), escape="\\"),
                                                          Person.id == f.who)).limit(1000)))
            stmt = stmt.where(col(OutboxMessage.person_id).in_(ids))
    return f.dates.where(stmt, col(OutboxMessage.created_at))


def _titles(s: Session, subjects: set[str]) -> dict[str, str]:
    """The title of each call-out and incident among these subjects."""
    out: dict[str, str] = {}
    callouts = [x for x in subjects if kind_of(x) == "callout"]
    incidents = [x for x in subjects if kind_of(x) == "incident"]
    if callouts:
        out.update(s.exec(select(Callout.id, Callout.title).where(col(Callout.id).in_(callouts))).all())
    if incidents:
        out.update(s.exec(select(Incident.id, Incident.title).where(col(Incident.id).in_(incidents))).all())
    return out


def subject_link(subject: str | None) -> tuple[str, str | None]:
    """A subject's kind and the address of its page (None: it has none)."""
    if not subject:
        return "", None
    kind = kind_of(subject)
    page = PAGES.get(kind)
    return kind, page.format(subject.removeprefix(f"{kind}/")) if page else None


def _address(channel: str, to: str) -> str:
    """Where it went as staff may see it: a number masked (store.directory.mask_mobile), an email address;
    not an IM account (often the person's id: the name says whose it is)."""
    if channel == "im":
        return ""
    return to if channel == "email" else mask_mobile(to)


def _row(m: OutboxMessage, names: dict[str, str], titles: dict[str, str]) -> dict[str, Any]:
    kind, link = subject_link(m.subject)
    purpose = (m.meta or {}).get("purpose")
    return {"id": m.id, "at": m.created_at, "sent_at": m.sent_at, "updated_at": m.updated_at,
            "person_id": m.person_id, "name": names.get(m.person_id or "", ""),
            "to": _address(m.channel, m.to), "channel": m.channel,
            "status": m.status, "error": m.error, "subject": m.subject or "", "kind": kind, "link": link,
            "title": titles.get(m.subject or "", ""), "purpose": purpose, "drill": m.drill,
            "body": masked_message(m.body, purpose)}


def message_log(s: Session, f: LogFilter, page: int = 1, per_page: int = PAGE) -> dict[str, Any]:
    """One page of the log (newest first), the number of messages matching and of pages."""
    f.check()
    stmt = _statement(s, f)
    total = s.exec(select(func.count()).select_from(stmt.subquery())).one()
    pages = max(1, -(-total // per_page))
    page = min(max(page, 1), pages)
    rows = list(s.exec(stmt.order_by(col(OutboxMessage.created_at).desc(), col(OutboxMessage.id).desc())
                       .offset((page - 1) * per_page).limit(per_page)))
    ids = {m.person_id for m in rows if m.person_id}
    names = dict(s.exec(select(Person.id, Person.name).where(col(Person.id).in_(list(ids)))).all()) if ids else {}
    titles = _titles(s, {m.subject for m in rows if m.subject})
    return {"rows": [_row(m, names, titles) for m in rows], "total": total, "page": page, "pages": pages,
            "per_page": per_page}
