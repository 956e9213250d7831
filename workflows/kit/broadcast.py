"""应急广播: what a workflow asks the broadcast activity (activities/broadcast.py, `names.Broadcast.PLAY`) to play.

Any procedure may broadcast: the call-out does for the levels its plan's `broadcast:` section covers; a
publication of lower warnings may too. The activity maps the towns to the platform's areas, records
`broadcast.requested` / `broadcast.accepted` on `subject`, and never plays one `request_id` twice.

Pure: pydantic and the standard library only (workflows import it inside the sandbox).
"""
from __future__ import annotations

from datetime import timedelta

from pydantic import BaseModel, Field
from temporalio.common import RetryPolicy

ATTEMPTS = 8
"""Tries of one broadcast (1 s, then backing off to 30 s apart: about 2½ minutes). The last try that fails
records `broadcast.failed` and returns: a platform that is down never holds up the procedure that asked."""

OPTIONS = dict(start_to_close_timeout=timedelta(minutes=2), heartbeat_timeout=timedelta(seconds=30),
               retry_policy=RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=30),
                                        maximum_attempts=ATTEMPTS))
"""`workflow.execute_activity(names.Broadcast.PLAY, order, **OPTIONS)`."""


class BroadcastOrder(BaseModel):
    request_id: str = Field(min_length=1, description="the idempotency key: one play per id")
    subject: str = Field(description="the audit subject the steps are recorded on (a call-out's id, a warning's)")
    warning_id: str | None = None
    town_ids: list[str] = Field(default_factory=list, description="the towns whose terminals play it")
    text: str = Field(min_length=1, max_length=500)
    level: str
    repeat: int = Field(default=1, ge=1, le=10)
    drill: bool = False
    purpose: str = "alert"  # alert | update | cancel


class BroadcastOutcome(BaseModel):
    request_id: str
    status: str  # accepted | failed | skipped (no town)
    task_id: str | None = None
    towns: list[str] = Field(default_factory=list)


DRILL_MARK = "【演练】"


def render(template: str, *, level_zh: str, event: str, headline: str, area: str, drill: bool) -> str:
    """A plan's broadcast template filled in; a drill is announced as one before anything else."""
    text = template.format(level=level_zh, event=event, headline=headline, area=area)
    return (DRILL_MARK + text) if drill else text
