"""A gateway's status callback or a voice keypress for one sent message: the outbox row updated, a
keypress 1 acknowledged, a failure reported to the call-out shard that sent it."""
from __future__ import annotations

import asyncio
import weakref
from datetime import UTC, datetime

from temporalio.client import Client

from api.services.answers.acks import AnswerError, acknowledge, signal_events
from store.group import GroupCommit
from store.db import session_scope
from store.messages import NotOurs, sent_message
from workflows.callout import ShardEvents
from workflows.escalation import Report

STATUS_MAP = {  # gateway status -> report status
    "delivered": "delivered", "sent": "sent", "failed": "failed", "undelivered": "undelivered", "busy": "busy",
    "no-answer": "no_answer", "no_answer": "no_answer", "canceled": "canceled", "machine": "machine",
    "completed": "completed", "answered": "answered", "in-progress": "answered", "ringing": "ringing",
    "queued": "queued", "declined": "declined", "opted_out": "opted_out",
}
PROGRESS = {"sent", "queued", "ringing", "answered", "completed", "delivered"}


def _apply_status(s, provider_id: str, mapped: str, digits: str | None, detail: str | None,
                  at: datetime, outbox_id: str | None = None) -> tuple[str | None, str | None, str | None, str, str]:
    """Update the outbox row (the one `outbox_id` names, bound to `provider_id` if the send's result is not in
    yet, else the one with `provider_id`); returns (subject, person_id, workflow_id, send key, channel)."""
    try:
        msg = sent_message(s, outbox_id, provider_id)
    except NotOurs:
        msg = None
    if msg is None:
        raise AnswerError(f"no message with provider id {provider_id!r}")
    if digits == "1" and mapped != "machine":
        msg.status = "answered"
    elif mapped in PROGRESS:
        if mapped in ("delivered", "answered", "completed"):
            msg.status = mapped
    else:
        msg.status, msg.error = mapped, detail or msg.error
    msg.updated_at = at
    return msg.subject, msg.person_id, msg.workflow_id, msg.idempotency_key, msg.channel


def _apply_statuses(items: list[tuple]) -> list[tuple | AnswerError]:
    """The callbacks that arrive together, applied in their order in one transaction (group commit: a burst of
    delivery reports was a write transaction each, queued on SQLite's lock; in bench/api_load.py's callback phase
    those transactions were ~45 % of the API's samples). A callback about no message of ours gets its
    AnswerError; the others are still written."""
    out: list[tuple | AnswerError] = []
    with session_scope() as s:
        for item in items:
            try:
                out.append(_apply_status(s, *item))
            except AnswerError as exc:
                out.append(exc)
    return out


_commits: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, GroupCommit] = weakref.WeakKeyDictionary()


def _status_commit() -> GroupCommit:
    """This event loop's group commit of status callbacks (tests run many loops in one process)."""
    loop = asyncio.get_running_loop()
    if loop not in _commits:
        _commits[loop] = GroupCommit(_apply_statuses)
    return _commits[loop]


async def gateway_report(client: Client, provider_id: str, status: str, *, answered_by: str | None = None,
                         digits: str | None = None, detail: str | None = None, at: datetime | None = None,
                         outbox_id: str | None = None) -> dict:
    """A gateway's status callback or voice keypress for one sent message (`outbox_id`: the outbox row the
    callback's URL names, see store.messages.sent_message)."""
    at = at or datetime.now(UTC)
    if answered_by and answered_by.lower().startswith(("machine", "fax")):
        status = "machine"  # an answering machine is never an acknowledgement
    mapped = STATUS_MAP.get(status.lower())
    if mapped is None:
        raise AnswerError(f"unknown status {status!r}")
    if digits == "2" and mapped != "machine":
        mapped = "declined"
    applied = await _status_commit().submit((provider_id, mapped, digits, detail, at, outbox_id))
    if isinstance(applied, AnswerError):
        raise applied
    subject, person_id, workflow_id, key, channel = applied
    if digits == "1" and mapped != "machine":
        answered = await acknowledge(client, subject or "", person_id or "", "voice", ref=f"keypress:{provider_id}", at=at)
        return {"handled": "ack", **answered.as_dict()}
    if channel == "voice" and mapped == "completed" and digits is None:
        mapped = "no_keypress"  # the call ended and nobody confirmed: move on, as after no answer
    if mapped in PROGRESS and mapped not in ("delivered", "completed"):
        return {"handled": "progress"}
    if workflow_id:
        await signal_events(client, workflow_id, ShardEvents(reports=[Report(send_key=key, status=mapped, at=at, detail=detail)]))
    return {"handled": mapped}
