"""What every procedure's workflow shares besides the escalation interpreter (escalation.py):
how it calls its activities, how it refuses a step, who asks for a step, and the audit event
it asks to have recorded.

Activities, one policy for all, so that every procedure survives a fault alike:

- retried until they succeed: 1 s after a failure at first, then backing off to 30 s apart. An
  activity that can never succeed says so with a non-retryable ApplicationError;
- a worker killed mid-activity is noticed within seconds: every activity heartbeats every 2 s
  while it runs (activities/heartbeat.py), and the heartbeat timeout is a few beats. Without
  it the activity would wait out its start-to-close timeout (minutes) before running again.
"""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, Field
from temporalio.common import RetryPolicy

RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=30))
HEARTBEAT_TIMEOUT = timedelta(seconds=10)


def activity_options(start_to_close: timedelta = timedelta(minutes=5)) -> dict:
    """Keyword arguments for `workflow.execute_activity`."""
    return dict(start_to_close_timeout=start_to_close, heartbeat_timeout=HEARTBEAT_TIMEOUT, retry_policy=RETRY)


ACTIVITY = activity_options()

LOCAL = dict(start_to_close_timeout=timedelta(minutes=1), retry_policy=RETRY)
"""Keyword arguments for `workflow.execute_local_activity`: a short write a person waits on (answers to record),
run by the worker that runs the workflow task, at once, rather than queued for a worker slot behind the other
shards' batches of sends. Retried as every activity is; a worker killed
meanwhile fails its workflow task, and the worker that takes the task over runs it again."""

# A step an update validator refuses raises ApplicationError(reason, type=one of these); the API
# answers 403, 409, 422 or 404 with the reason (api/services/steps.py).
FORBIDDEN, CONFLICT, INVALID, NOT_FOUND = "forbidden", "conflict", "invalid", "not_found"


class Actor(BaseModel):
    """Who asks for a step: the API fills these from the caller's token."""

    actor: str = Field(min_length=1, max_length=200)
    role: str = Field(max_length=50)


class Event(BaseModel):
    """Something that happened, for an activity to append to the procedure's audit chain."""

    kind: str
    step_id: str
    actor: str = "system"
    channel: str | None = None
    at: datetime
    payload: dict[str, Any] = Field(default_factory=dict)
