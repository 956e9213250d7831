"""Signed webhook requests seen: a platform's signed request (the broadcast platform's receipts, the hotline
platform's tickets and answers) is taken once; the same signature again inside the replay window is a replay.
Checked by api/services/signed_webhooks.py."""
from __future__ import annotations

from datetime import datetime, timedelta

from sqlmodel import Field, Session, SQLModel, col, delete

from store.types import now_utc, utc_column


class WebhookNonce(SQLModel, table=True):
    """A signed webhook request seen once, keyed `<platform>:<signature>`."""

    __tablename__ = "webhook_nonce"
    key: str = Field(primary_key=True)
    seen_at: datetime = Field(default_factory=now_utc, sa_column=utc_column(nullable=False, index=True))


def nonce_fresh(s: Session, key: str, window_s: int, now: datetime | None = None) -> bool:
    """Record a signed request's key; False when it was seen before (a replay). Keys older than twice the window
    are forgotten (their timestamps are refused as stale anyway)."""
    now = now or now_utc()
    s.exec(delete(WebhookNonce).where(col(WebhookNonce.seen_at) < now - timedelta(seconds=2 * window_s)))
    if s.get(WebhookNonce, key) is not None:
        return False
    s.add(WebhookNonce(key=key, seen_at=now))
    s.flush()
    return True
