"""Event kinds are defined once (workflows/kit/events.py): the audit chain refuses to write a kind the
registry does not know, so renaming or removing one is loud, while any stored kind still reads back."""
from __future__ import annotations

import base64
import json
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlmodel import select

from store.audit import AuditEvent, NewEvent, append
from store.db import session_scope
from store.replay import load_events, replay_callout
from store.review import statistics
from workflows.kit import events

ROOT = Path(__file__).resolve().parents[2]
HISTORIES = ROOT / "tests" / "workflows" / "histories"


def test_an_unregistered_kind_is_refused_and_nothing_is_written(db_url):
    with pytest.raises(events.UnknownEventKind, match="callout.strated.*workflows/kit/events.py"):
        with session_scope() as s:
            append(s, [NewEvent(subject="c1", kind="callout.started", step_id="a"),
                       NewEvent(subject="c1", kind="callout.strated", step_id="b")])  # a typo at an emitter
    with session_scope(write=False) as s:
        assert s.exec(select(AuditEvent)).all() == []


def test_renaming_a_registered_kind_makes_its_emitters_fail(db_url, monkeypatch):
    # the registry renames callout.started; an emitter still writing the old name fails on its next write
    monkeypatch.delitem(events.KINDS, "callout.started")
    monkeypatch.setitem(events.KINDS, "callout.began", events.CalloutStarted)
    with pytest.raises(events.UnknownEventKind, match="'callout.started'"):
        with session_scope() as s:
            append(s, [NewEvent(subject="c1", kind="callout.started", step_id="started", payload={"level": "red"})])


def test_removing_a_registered_kind_makes_its_emitters_fail(db_url, monkeypatch):
    monkeypatch.delitem(events.KINDS, events.Activation.item("task", "overdue"))
    with pytest.raises(events.UnknownEventKind):
        events.Activation.item("task", "overdue")  # the constant's own function refuses it too
    with pytest.raises(events.UnknownEventKind):
        with session_scope() as s:
            append(s, [NewEvent(subject="activation/A1", kind="activation.task.overdue", step_id="o")])


def test_a_stored_kind_unknown_today_still_reads(db_url, monkeypatch):
    """A database holds events of kinds since renamed or removed: replay and statistics read them (and skip
    what they do not know)."""
    at = datetime(2026, 7, 1, 8, 0, tzinfo=UTC)
    with monkeypatch.context() as m:
        m.setitem(events.KINDS, "callout.legacy_note", None)  # registered when it was written
        with session_scope() as s:
            append(s, [NewEvent(subject="c1", kind="callout.started", step_id="started", at=at,
                                payload={"level": "red"}),
                       NewEvent(subject="c1", kind="callout.legacy_note", step_id="n", at=at, payload={"x": 1})])
    assert "callout.legacy_note" not in events.KINDS
    with session_scope(write=False) as s:
        rows = load_events(s, "c1")
    assert [r.kind for r in rows] == ["callout.started", "callout.legacy_note"]
    st = replay_callout(rows, at)
    assert st["status"] == "running" and st["level"] == "red" and st["events_applied"] == 2
    assert statistics({"c1": rows})["callouts"][0]["level"] == "red"


def _payloads(node):
    """Every JSON payload of a saved history (activity inputs and results, signals, updates…), decoded."""
    if isinstance(node, dict):
        meta = node.get("metadata")
        if "data" in node and isinstance(meta, dict) and base64.b64decode(meta.get("encoding", "")) == b"json/plain":
            yield json.loads(base64.b64decode(node["data"]))
        for v in node.values():
            yield from _payloads(v)
    elif isinstance(node, list):
        for v in node:
            yield from _payloads(v)


def _written(node, out: dict[str, set[str]], name: str) -> None:
    """Events (kind, step_id, at) the workflows asked activities to write; records of the interpreter (they carry
    their target) apart: those are written under each episode's prefix."""
    if isinstance(node, dict):
        if isinstance(node.get("kind"), str) and "step_id" in node and "at" in node:
            out["records" if "target_key" in node else "events"].add(node["kind"])
        for v in node.values():
            _written(v, out, name)
    elif isinstance(node, list):
        for v in node:
            _written(v, out, name)


def test_every_kind_in_the_saved_histories_is_registered():
    found: dict[str, set[str]] = {"events": set(), "records": set()}
    files = sorted(p for p in HISTORIES.glob("*.json") if p.name != "index.json")
    assert files
    for path in files:
        for payload in _payloads(json.loads(path.read_text(encoding="utf-8"))):
            _written(payload, found, path.name)
    assert len(found["events"]) > 40 and len(found["records"]) > 4  # the histories' activities do carry events
    assert sorted(found["events"] - set(events.KINDS)) == []
    # (the relay's own records, 到户到人, are written under its episode prefix like the interpreter's)
    assert sorted(found["records"] - set(events.Escalation.RECORDS) - set(events.Relay.RECORDS)) == []
    assert {f"{events.Relay.EPISODE}.{r}" for r in events.Relay.RECORDS} <= set(events.KINDS)
    for prefix in events.EPISODE_PREFIXES:  # and every record under every episode prefix
        assert {f"{prefix}.{r}" for r in (*events.Escalation.RECORDS, events.Escalation.SENT)} <= set(events.KINDS)


def _events_of(node):
    if isinstance(node, dict):
        if isinstance(node.get("kind"), str) and "step_id" in node and "at" in node and "target_key" not in node:
            yield node
        for v in node.values():
            yield from _events_of(v)
    elif isinstance(node, list):
        for v in node:
            yield from _events_of(v)


def test_the_payloads_in_the_saved_histories_fit_their_models():
    """The payload models say what the workflows write: every event of the histories whose kind has a model
    validates against it (its keys' types)."""
    checked = 0
    for path in sorted(p for p in HISTORIES.glob("*.json") if p.name != "index.json"):
        for payload in _payloads(json.loads(path.read_text(encoding="utf-8"))):
            for ev in _events_of(payload):
                model = events.payload_model(ev["kind"])
                if model is not None:
                    model.model_validate(ev.get("payload") or {})
                    checked += 1
    assert checked > 50


# literal kinds in the source: `kind="x.y"`, `kind = "x.y"`, `Event(kind="…")`, `_notify("x.y", …)`, `_ev(s, "x.y", …)`
_LITERAL = re.compile(r'''(?:\bkind\s*=\s*|_notify\(|_ev\([^,()]+,\s*)"([a-z_]+\.[a-z_.]+)"''')


def test_every_literal_kind_in_the_source_is_registered():
    """Emitters not yet switched to the constants (or code paths no test runs) still write only known kinds."""
    unknown = {}
    for folder in ("workflows", "activities", "api", "store", "cli"):
        for path in (ROOT / folder).rglob("*.py"):
            for m in _LITERAL.finditer(path.read_text(encoding="utf-8")):
                if m.group(1) not in events.KINDS and m.group(1) not in events.EPISODE_PREFIXES:  # (a batch's)
                    unknown[m.group(1)] = str(path.relative_to(ROOT))
    assert unknown == {}


def test_payload_models_name_their_keys_and_read_leniently():
    assert events.LevelChanged.k.from_ == "from"
    with pytest.raises(AttributeError, match="no payload key 'frm'"):
        events.LevelChanged.k.frm  # noqa: B018 (a renamed field breaks its readers loudly)
    view = events.ItemStep.read({"item": "T-1", "extra": 1})
    assert (view.item, view.due_at, view.feedback_required) == ("T-1", None, True)
    with pytest.raises(AttributeError):
        view.extra  # noqa: B018 (only the model's fields are read through it)
