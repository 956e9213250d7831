"""With the simulator, "my phone": the messages sent to one person, whole, with the one-time links they hold."""
from __future__ import annotations

from sqlmodel import Session, col, select

from store.messages import OutboxMessage
from store.redact import ONE_TIME_LINK


def my_messages(s: Session, person_id: str, limit: int = 100) -> list[dict]:
    """The person's latest messages, newest first, each with its links (once each, in order)."""
    rows = s.exec(select(OutboxMessage).where(OutboxMessage.person_id == person_id)
                  .order_by(col(OutboxMessage.id).desc()).limit(limit))
    return [{"m": m, "links": list(dict.fromkeys(x.group(0) for x in ONE_TIME_LINK.finditer(f"{m.body} {m.ack_url or ''}")))}
            for m in rows]
