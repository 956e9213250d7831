"""The read status (已读) of DingTalk work notifications, asked of DingTalk (activities/gateways/dingtalk.py) for the
notifications of the last day not yet read, every `DINGTALK_READ_POLL_S` by the API process that holds the
scheduler lock (api/feeds.py). Read is recorded as **delivered** (the outbox row; the call-out's shard hears it as
a delivery report): never an acknowledgement — the card's button (the signed link) or a reply is. A userid DingTalk
calls invalid or forbidden is undelivered: the escalation moves on."""
from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import structlog
from sqlmodel import col, select
from temporalio.client import Client

from api.services.answers import AnswerError, gateway_report
from store.db import session_scope
from store.messages import OutboxMessage

log = structlog.get_logger("yingji.dingtalk")
WINDOW = timedelta(days=1)
BATCH = 500


def _unread(now: datetime) -> list[str]:
    with session_scope(write=False) as s:
        return list(s.exec(select(OutboxMessage.provider_id).where(
            OutboxMessage.gateway == "dingtalk", OutboxMessage.channel == "im", OutboxMessage.status == "sent",
            col(OutboxMessage.provider_id).is_not(None), col(OutboxMessage.created_at) >= now - WINDOW)
            .order_by(col(OutboxMessage.id).desc()).limit(BATCH)))


async def poll_read_status(client: Client, now: datetime | None = None) -> dict[str, str]:
    """Ask DingTalk about the unread notifications of the last day; record what it says. {provider id: status}."""
    from activities.gateways import gateway_for

    gateway = gateway_for("im")
    if gateway.name != "dingtalk":
        return {}
    pending = await asyncio.to_thread(_unread, now or datetime.now(UTC))
    if not pending:
        return {}
    found = await gateway.read_status(pending)  # type: ignore[attr-defined]
    for provider_id, status in found.items():
        try:
            await gateway_report(client, provider_id, status,
                                 detail=None if status == "delivered" else "DingTalk: userid invalid or forbidden")
        except AnswerError as exc:
            log.info("dingtalk read status not applied", reason=str(exc))
    return found
