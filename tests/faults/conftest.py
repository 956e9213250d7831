"""Fault tests: a stack per test (Temporal dev server and worker as subprocesses, the API here)."""
from __future__ import annotations

import pytest

from tests.faults.harness import make_stack  # noqa: F401 - the fixture, shared with tests/production


@pytest.fixture
def stack_database() -> str | None:
    """The database of the stacks: None = a SQLite file in the test's folder (tests/production: PostgreSQL)."""
    return None
