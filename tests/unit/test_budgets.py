"""Time budgets (tests/conftest.py): a real-time test states what it is expected to take; its timeout is
derived from that with a wide margin, never below the suite's default, and overruns are listed."""
from __future__ import annotations

from pathlib import Path

pytest_plugins = ["pytester"]

CONFTEST = (Path(__file__).resolve().parents[1] / "conftest.py").read_text(encoding="utf-8")


def test_a_budget_sets_the_timeout_and_an_overrun_is_listed(pytester):
    pytester.makeconftest(CONFTEST)
    pytester.makeini("[pytest]\ntimeout = 300\nasyncio_default_fixture_loop_scope = function\n"
                     "markers =\n    budget(seconds): expected duration\n")
    pytester.makepyfile(test_timed='''
import time
import pytest

@pytest.mark.budget(100)
def test_long(request):
    assert request.node.get_closest_marker("timeout").args[0] == 400

@pytest.mark.budget(1)
def test_short_keeps_the_default(request):
    assert request.node.get_closest_marker("timeout").args[0] == 300

@pytest.mark.budget(0.001)
def test_over_its_budget():
    time.sleep(0.05)

@pytest.mark.budget(100)
@pytest.mark.timeout(7)
def test_an_explicit_timeout_wins(request):
    assert request.node.get_closest_marker("timeout").args[0] == 7

def test_without_a_budget(request):
    assert request.node.get_closest_marker("timeout") is None
''')
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=5)
    result.stdout.fnmatch_lines(["*over their time budget*", "*budget*0 s*test_timed.py::test_over_its_budget"])
    assert "test_long" not in result.stdout.str().split("over their time budget")[1]
