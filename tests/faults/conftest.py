"""Fault tests: a stack per test (Temporal dev server and worker as subprocesses, the API here)."""
from __future__ import annotations

import pytest

from tests.faults.harness import Stack


@pytest.fixture
def make_stack(tmp_path, monkeypatch):
    """make_stack(steps, env, standby) -> Stack, with this process's settings pointing at it; stopped at the end."""
    from activities.delivery import reset_gates
    from activities.gateways import reset_gateways
    from config import get_settings
    from store.db import dispose_all

    made: list[Stack] = []

    def make(steps: list[str], env: dict[str, str] | None = None, standby: bool = False) -> Stack:
        stack = Stack(tmp_path, steps, env, standby=standby)
        for k, v in stack.env.items():
            monkeypatch.setenv(k, v)
        get_settings.cache_clear()
        dispose_all()
        reset_gateways()
        reset_gates()
        made.append(stack)
        return stack

    yield make
    for stack in made:
        stack.stop()
    dispose_all()
    get_settings.cache_clear()
    reset_gateways()
