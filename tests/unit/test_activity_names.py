"""Activity names are defined once (workflows/kit/names.py): the worker registers exactly those, and the
saved histories call no other (a history records the name; renaming one would strand running workflows)."""
from __future__ import annotations

import json
from pathlib import Path

from temporalio import activity

from activities import all_activities
from workflows.kit import names

HISTORIES = Path(__file__).resolve().parents[1] / "workflows" / "histories"


def test_the_worker_registers_exactly_the_named_activities():
    registered = sorted(activity._Definition.must_from_callable(fn).name for fn in all_activities())
    assert registered == names.ALL


def test_every_activity_a_saved_history_calls_is_named():
    called = set()
    for f in HISTORIES.glob("*Workflow*.json"):
        for e in json.loads(f.read_text())["events"]:
            attrs = e.get("activityTaskScheduledEventAttributes")
            if attrs:
                called.add(attrs["activityType"]["name"])
    assert called, "the saved histories call activities"
    assert called <= set(names.ALL), sorted(called - set(names.ALL))
