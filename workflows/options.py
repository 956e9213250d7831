"""How every workflow calls its activities: one policy, so that every procedure survives a fault alike.

- Retried until they succeed: 1 s after a failure at first, then backing off to 30 s apart. An
  activity that can never succeed says so with a non-retryable ApplicationError.
- A worker killed mid-activity is noticed within seconds: every activity heartbeats every 2 s
  while it runs (activities/heartbeat.py), and the heartbeat timeout is a few beats. Without
  it the activity would wait out its start-to-close timeout (minutes) before running again.
"""
from __future__ import annotations

from datetime import timedelta

from temporalio.common import RetryPolicy

RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=30))
HEARTBEAT_TIMEOUT = timedelta(seconds=10)


def activity_options(start_to_close: timedelta = timedelta(minutes=5)) -> dict:
    """Keyword arguments for `workflow.execute_activity`."""
    return dict(start_to_close_timeout=start_to_close, heartbeat_timeout=HEARTBEAT_TIMEOUT, retry_policy=RETRY)


ACTIVITY = activity_options()
