"""Send and record one batch of the escalation interpreter's actions (workflows/escalation/).

Every procedure but the call-out flushes the same way: render each send, deliver it
through the outbox (exactly once), then write one audit event per send and per record,
with the procedure's read model, in one transaction; sends the gateway refused at once
go back to the workflow as reports. The call-out's shards write per-target rows of their
own in bulk (activities/callout.py). What differs per procedure is passed in: the audit
kind, what every event's payload carries, how a send is worded, how its answer is asked
for, and what else the transaction saves.
"""
from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlmodel import Session

from activities.delivery import REFUSED, Delivery, Outcome, deliver
from config import get_settings
from store.audit import NewEvent, append
from store.db import session_scope
from store.directory import mask_mobile
from store.links import make_ack_token, reply_code, shorten
from workflows.escalation import Record, Report, Send

Render = Callable[[Send, str | None, str | None], tuple[str, str | None]]
"""(send, reply code, link) -> (SMS/IM body, voice text or None)."""
Links = Callable[[Send], tuple[str | None, str | None]]
"""send -> (reply code, link) of a send that wants an answer."""
Save = Callable[[Session, dict[str, Outcome], datetime], None]
"""Writes the procedure's read model in the flush's transaction (outcomes by send key, now)."""
After = Callable[[Session], Sequence[NewEvent]]
"""Events of the procedure's own steps that the batch's answers made (a work order signed), appended after the
batch's events in the flush's transaction; it may write what goes with them."""


@dataclass
class Batch:
    subject: str
    workflow_id: str
    run_id: str | None
    episode: str
    kind: str  # audit kinds are f"{kind}.sent" and f"{kind}.{record.kind}"
    sends: list[Send]
    records: list[Record]
    context: dict[str, Any] = field(default_factory=dict)  # in every event's payload (label, unit…)
    meta: dict[str, Any] = field(default_factory=dict)  # in every outbox row's meta


def answer_text(code: str | None, link: str | None, verb: str = "确认") -> str:
    """How a text asks for its answer: reply 1 or the code (which also says whose answer it is), or tap the
    link (last, so that no punctuation sticks to it)."""
    return f"回复1或{code}{verb}" + (f",或点击 {link}" if link else "。")


def ack_links(subject: str) -> Links:
    """The usual answer: reply "1" with the code, or tap the signed link (SMS and IM only)."""
    settings = get_settings()
    key = settings.signing_key()

    def links(send: Send) -> tuple[str | None, str | None]:
        if send.purpose not in ("notify", "escalate"):
            return None, None
        link = (f"{settings.base_url}/ack/{make_ack_token(key, subject, send.person_id)}"
                if send.channel in ("sms", "im") else None)
        return reply_code(subject, send.person_id), link

    return links


async def send_and_record(batch: Batch, render: Render, *, links: Links | None = None,
                          save: Save | None = None, after: After | None = None) -> dict[str, Any]:
    """Deliver the batch's sends, record sends and records; returns the sends that failed at once (as
    reports) and when the gateway accepted each send: a FlushResult's fields.

    The read model `save` writes and the events `after` gives commit with the batch's events, in one
    transaction: whoever reads the state the batch led to finds its events in the trail."""
    links = links or ack_links(batch.subject)
    answers = {send.key: links(send) for send in batch.sends}
    short = await asyncio.to_thread(_shorten, {k: link for k, (_, link) in answers.items() if link})
    deliveries = []
    for send in batch.sends:
        code, link = answers[send.key]
        body, voice = render(send, code, short.get(send.key, link))
        deliveries.append(Delivery(key=send.key, channel=send.channel, to=send.to, body=body, voice_text=voice,
                                   person_id=send.person_id, subject=batch.subject, workflow_id=batch.workflow_id,
                                   ack_url=link, reply_code=code, priority=send.priority,
                                   meta={"target_key": send.target_key, "purpose": send.purpose, **batch.meta,
                                         "episode": batch.episode}))
    outcomes = {o.key: o for o in await deliver(deliveries)}
    now = datetime.now(UTC)
    events = _events(batch, outcomes, now)

    def write() -> None:
        with session_scope() as s:
            if save is not None:
                save(s, outcomes, now)
                s.flush()
            append(s, events)
            if after is not None:
                append(s, list(after(s)))

    await asyncio.to_thread(write)
    return flush_result(outcomes, now)


def _shorten(links: dict[str, str]) -> dict[str, str]:
    """The texts carry short aliases of the signed links (a text then fits two SMS segments); the outbox
    keeps each signed link itself as the delivery's ack_url."""
    if not links:
        return {}
    settings = get_settings()
    with session_scope() as s:
        return shorten(s, settings.signing_key(), settings.base_url, links)


def flush_result(outcomes: dict[str, Outcome], now: datetime) -> dict[str, Any]:
    """A FlushResult's fields: the sends that failed at once, and when each accepted one was accepted."""
    return {"reports": [Report(send_key=k, status="opted_out" if o.status == "opted_out" else "failed", at=now,
                               detail=o.error) for k, o in outcomes.items() if o.status in REFUSED],
            "accepted": {k: o.accepted_at for k, o in outcomes.items() if o.accepted_at is not None}}


def _events(b: Batch, outcomes: dict[str, Outcome], now: datetime) -> list[NewEvent]:
    events: list[NewEvent] = []
    for send in b.sends:
        o = outcomes[send.key]
        events.append(NewEvent(subject=b.subject, kind=f"{b.kind}.sent",
                               step_id=f"send/{send.key.removeprefix(b.workflow_id + '/')}",
                               workflow_id=b.workflow_id, run_id=b.run_id, channel=send.channel,
                               at=o.accepted_at or now,  # when the gateway took it: before any answer to it
                               payload={"episode": b.episode, **b.context, "target": send.target_key,
                                        "person_id": send.person_id, "name": send.name, "purpose": send.purpose,
                                        "to": mask_mobile(send.to) if send.channel != "im" else send.to,
                                        "status": o.status, "error": o.error, "outbox_id": o.outbox_id}))
    for r in b.records:
        events.append(NewEvent(subject=b.subject, kind=f"{b.kind}.{r.kind}",
                               step_id=r.step_id if r.step_global else f"{b.episode}/{r.step_id}",
                               workflow_id=b.workflow_id, run_id=b.run_id, actor=r.actor, channel=r.channel, at=r.at,
                               payload={"episode": b.episode, **b.context, "target": r.target_key,
                                        "person_id": r.person_id, "state": r.state, **r.payload}))
    return events
