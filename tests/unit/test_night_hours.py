"""Night hours (a call-out started in them begins with a voice call): a window across midnight, an empty one, the
settings that name them, and the windows the tests use to hold at every moment of the day or at none. CI once ran
at 23:59 in Beijing, when the tests' 'never night' window (23:59–00:00) held."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from config import Settings
from tests.workflows.callout_helpers import callout_input
from workflows.callout_models import NightHours

DAY = datetime(2026, 12, 4, 16, 0, tzinfo=UTC)  # 00:00 on 5 December in Beijing


def moments():
    """Every minute of a Beijing day, and the last moments before its midnight."""
    yield from (DAY + timedelta(minutes=m) for m in range(24 * 60))
    yield from (DAY + timedelta(days=1) - timedelta(seconds=s) for s in (1, 0.5, 0.001))


def test_a_window_across_midnight_holds_from_its_start_to_its_end():
    hours = NightHours(start="22:00", end="07:00")
    local = {m: (m + timedelta(hours=8)).time() for m in moments()}
    assert all(hours.contains(m) == (t.hour >= 22 or t.hour < 7) for m, t in local.items())


def test_equal_start_and_end_is_no_night_hours():
    assert not any(NightHours(start="00:00", end="00:00").contains(m) for m in moments())
    assert not any(NightHours(start="03:30", end="03:30").contains(m) for m in moments())


@pytest.mark.parametrize("night", [True, False])
def test_the_tests_windows_hold_at_every_moment_or_at_none(night):
    hours = callout_input(night=night).night
    assert {hours.contains(m) for m in moments()} == {night}


def test_night_hours_that_are_not_a_time_of_day_are_refused_by_name():
    with pytest.raises(ValidationError, match=r"NIGHT_START: '22h' is not a time of day; write it as HH:MM"):
        Settings(night_start="22h")
    with pytest.raises(ValidationError, match=r"NIGHT_END: '24:00' is not a time of day"):
        Settings(night_end="24:00")
    assert Settings(night_start="21:30", night_end="06:00").night_start == "21:30"
