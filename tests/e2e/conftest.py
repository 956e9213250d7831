"""Fixtures of the end-to-end tests."""
from __future__ import annotations

import pytest


@pytest.fixture
async def env():
    """A time-skipping server of the test's own: what it leaves running holds no other test's clock."""
    from temporalio.contrib.pydantic import pydantic_data_converter
    from temporalio.testing import WorkflowEnvironment

    from tests.conftest import temporal_test_server

    e = await WorkflowEnvironment.start_time_skipping(test_server_existing_path=temporal_test_server(),
                                                      data_converter=pydantic_data_converter)
    yield e
    await e.shutdown()
