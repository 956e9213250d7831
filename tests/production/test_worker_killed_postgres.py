"""kill -9 the worker ten times during a 500-person call-out (tests/faults/test_worker_killed.py), on PostgreSQL.

The same test function; this folder's `stack_database` puts the stack on a fresh PostgreSQL database.
"""
from __future__ import annotations

from tests.faults.test_worker_killed import test_worker_killed_ten_times_during_a_500_person_callout  # noqa: F401
