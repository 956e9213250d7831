"""An activity's unexpected error reaches Temporal as a short message, not SQL (issue 15, finding 3:
a 500-row INSERT in an IntegrityError's text made the failure exceed Temporal's size limit)."""
from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import insert

from activities.heartbeat import MAX_ERROR, short_error
from store.db import get_engine
from store.messages import OutboxMessage


def test_a_database_error_becomes_a_short_message(db_url):
    rows = [dict(idempotency_key="same", channel="sms", to=f"+8613900{i:06d}", body="【叫应】" * 50, status="sending",
                 meta={}, created_at=datetime.now(UTC)) for i in range(500)]
    with pytest.raises(Exception) as info:
        with get_engine(db_url, write=True).begin() as conn:
            conn.execute(insert(OutboxMessage), rows)
    assert "INSERT INTO outbox" in str(info.value) and "+8613900" in str(info.value)  # statement and parameters
    err = short_error(info.value)
    assert len(err.message) <= MAX_ERROR and "INSERT" not in err.message and "+8613900" not in err.message
    assert err.message.startswith("IntegrityError: UNIQUE constraint failed: outbox.idempotency_key"), err.message
    assert err.type == "IntegrityError" and not err.non_retryable
