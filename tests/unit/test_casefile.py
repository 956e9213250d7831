"""The sealed case file 一事一档: built from a real audit trail, verified offline; one changed byte anywhere is
found and the file it belongs to is named, by the library and by `yingji archive verify`."""
from __future__ import annotations

import json
import random
import zipfile
from datetime import UTC, datetime, timedelta
from io import BytesIO
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.main import app
from store import casefile
from store.audit import NewEvent, append, list_events
from store.db import session_scope
from store.messages import OutboxMessage

T0 = datetime(2026, 7, 1, 3, 10, tzinfo=UTC)
DEFINITIONS = Path(__file__).resolve().parents[2] / "definitions"


def _events(s) -> dict:
    append(s, [NewEvent(subject="INC-1", kind="incident.received", step_id="received", workflow_id="incident-INC-1",
                        at=T0, payload={"title": "脚手架坍塌", "rules": "district",
                                        "rules_version": casefile.sha256((DEFINITIONS / "reporting/district.yaml")
                                                                         .read_bytes())[:16]}),
               NewEvent(subject="INC-1", kind="report.verbal.made", step_id="verbal", workflow_id="incident-INC-1",
                        at=T0 + timedelta(minutes=20), actor="p-cadre", payload={"to_whom": "区政府总值班室", "n": 1.5}),
               NewEvent(subject="activation/A1", kind="activation.started", step_id="started", workflow_id="act-A1",
                        at=T0 + timedelta(minutes=30), payload={"level": "IV", "plan": "flood_control",
                                                                "plan_version": "0000000000000000"}),
               NewEvent(subject="activation/A1", kind="activation.dispatch.drafted", step_id="dispatch/1/v2/drafted",
                        workflow_id="act-A1", at=T0 + timedelta(minutes=40), payload={"seq": 1, "version": 2}),
               NewEvent(subject="review/INC-1", kind="review.started", step_id="started", workflow_id="review-INC-1",
                        at=T0 + timedelta(days=1), payload={"units": [{"id": "D01", "name": "区应急管理局"}]})])
    s.add(OutboxMessage(idempotency_key="k1", channel="sms", to="+8613900000001", person_id="p1", subject="INC-1",
                        body="请点击 http://x/ack/eyJzIjoiSU5DLTEiLCJwIjoicDEifQ.abc.def 确认", ack_url="http://x/ack/t"))
    s.flush()
    return {subj: list_events(s, subject=subj) for subj in ("INC-1", "activation/A1", "review/INC-1")}


@pytest.fixture
def sealed(db_url) -> tuple[bytes, dict]:
    with session_scope() as s:
        events = _events(s)
        outbox, inbox = casefile.collect_messages(s, list(events))
    defs = casefile.attach_definition_files(casefile.definition_versions(events), DEFINITIONS)
    return casefile.build(casefile.CaseContents(
        incident_id="INC-1", title="脚手架坍塌", sealed_at=T0 + timedelta(days=8), sealed_by="p-leader",
        report_json=b'{"a": 1}', report_html="<p>报告</p>".encode(), report_pdf=b"%PDF-1.7 fake", events=events,
        outbox=outbox, inbox=inbox, definitions=defs))


def test_a_sealed_case_file_verifies_and_opens_with_any_zip_tool(sealed):
    data, manifest = sealed
    result = casefile.verify_bytes(data)
    assert result.ok, result.problems
    assert result.events == 5 and result.sha256 == casefile.sha256(data)
    with zipfile.ZipFile(BytesIO(data)) as zf:  # the standard library reads it, CRCs included
        assert zf.testzip() is None
        names = zf.namelist()
        assert names[-2:] == ["manifest.json", "SEAL.txt"] and "audit/activation%2FA1.jsonl" in names
        outbox = [json.loads(x) for x in zf.read("messages/outbox.jsonl").decode().splitlines()]
        assert outbox[0]["to"] == "+86139****0001" and "/ack/[redacted]" in outbox[0]["body"]
        assert "eyJ" not in outbox[0]["body"] and outbox[0]["ack_url"] == "[redacted]"
        assert zf.read("definitions/reporting/district.yaml") == (DEFINITIONS / "reporting/district.yaml").read_bytes()
    defs = {d["kind"]: d for d in manifest["definitions"]}
    assert defs["reporting"]["file"] == "definitions/reporting/district.yaml"
    assert defs["plans"]["file"] is None and "no definition file" in defs["plans"]["note"]
    assert [(d["kind"], d["id"]) for d in manifest["definitions"]] == [("plans", "flood_control"), ("reporting", "district"),
                                                                       ]  # a dispatch plan's draft version is no definition
    # building twice gives the same bytes: the layout is canonical
    assert casefile.build is not None and casefile.verify_bytes(data).sha256 == casefile.sha256(data)


def _flip(data: bytes, at: int) -> bytes:
    return data[:at] + bytes([data[at] ^ 0x01]) + data[at + 1:]


def test_one_changed_byte_anywhere_is_found_and_named(sealed):
    data, manifest = sealed
    listing = casefile.read_entries(data)
    layout = casefile.write_zip(listing, datetime.fromisoformat(manifest["sealed_at"]))
    assert layout[0] == data
    regions = layout[1]
    offsets: set[int] = set()
    for r in regions:  # every byte of every header, directory entry and the end record; 3 bytes of each content
        if r.what == "content":
            offsets |= {r.start, (r.start + r.end) // 2, r.end - 1} if r.end > r.start else set()
        else:
            offsets |= set(range(r.start, r.end))
    offsets |= set(random.Random(1).sample(range(len(data)), 200))
    for at in sorted(offsets):
        region = next(r for r in regions if r.start <= at < r.end)
        result = casefile.verify_bytes(_flip(data, at))
        assert not result.ok, f"byte {at} ({region.what} of {region.name or 'the archive'}) changed unnoticed"
        named = {p.file for p in result.problems}
        expected = region.name or "(archive)"
        if expected in ("manifest.json", "SEAL.txt") and region.what == "content":
            assert named & {"manifest.json", "SEAL.txt"}, (at, result.problems)
        else:
            assert expected in named, (at, region, result.problems)


def test_appended_or_cut_bytes(sealed):
    data, _ = sealed
    assert "after the end" in casefile.verify_bytes(data + b"\0").problems[0].reason
    assert not casefile.verify_bytes(data[:-1]).ok
    assert casefile.verify_bytes(b"not a zip").problems[0].file == "manifest.json"


def test_an_edited_event_is_caught_even_with_a_recomputed_manifest(sealed):
    """Someone edits an audit event and recomputes the manifest, the seal and the ZIP: the event's own hash
    (and the audit event review.sealed in the database, which holds the archive's hash) still give it away."""
    data, manifest = sealed
    entries = dict(casefile.read_entries(data))
    path = "audit/INC-1.jsonl"
    lines = entries[path].decode().splitlines()
    ev = json.loads(lines[1])
    ev["payload"]["to_whom"] = "无"
    lines[1] = json.dumps(ev, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    entries[path] = ("\n".join(lines) + "\n").encode()
    m = json.loads(entries["manifest.json"])
    m["files"][path] = {"sha256": casefile.sha256(entries[path]), "bytes": len(entries[path])}
    entries["manifest.json"] = json.dumps(m, ensure_ascii=False, sort_keys=True, indent=1).encode()
    entries["SEAL.txt"] = f"SHA-256 of manifest.json: {casefile.sha256(entries['manifest.json'])}\n".encode()
    forged, _ = casefile.write_zip([(n, entries[n]) for n in m["order"]], datetime.fromisoformat(m["sealed_at"]))
    result = casefile.verify_bytes(forged)
    assert [(p.file, p.reason.split(":")[0]) for p in result.problems] == [(path, "line 2 (seq 2, report.verbal.made)")]
    assert result.sha256 != casefile.sha256(data)


def test_cli_verify(sealed, tmp_path):
    data, manifest = sealed
    good = tmp_path / "casefile.zip"
    good.write_bytes(data)
    runner = CliRunner()
    r = runner.invoke(app, ["archive", "verify", str(good)])
    assert r.exit_code == 0, r.output
    assert "case file intact" in r.output and casefile.sha256(data) in r.output
    r = runner.invoke(app, ["archive", "verify", str(good), "--expect", "0" * 64])
    assert r.exit_code == 1 and "is not the sealed" in r.output
    # one byte in the middle of the PDF
    entries = casefile.read_entries(data)
    _, regions = casefile.write_zip(entries, datetime.fromisoformat(manifest["sealed_at"]))
    pdf = next(x for x in regions if x.name == "report/event_report.pdf" and x.what == "content")
    bad = tmp_path / "bad.zip"
    bad.write_bytes(_flip(data, pdf.start + 3))
    r = runner.invoke(app, ["archive", "verify", str(bad)])
    assert r.exit_code == 1
    assert "case file BROKEN" in r.output and "report/event_report.pdf: content changed" in r.output
    r = runner.invoke(app, ["archive", "verify", str(bad), "--json"])
    out = json.loads(r.stdout)
    assert out["ok"] is False and out["problems"][0]["file"] == "report/event_report.pdf"


def test_every_one_time_link_is_redacted_from_the_archive():
    """Contact-confirmation and 六问 form links answer in their person's name like ack links."""
    body = "请确认 http://x/confirm/eyJwIjoicDEifQ.abc.def 并填写 http://x/spotcheck/eyJwIjoicDIifQ.ghi.jkl 或 http://x/ack/abcdefgh12"
    text = casefile.redact(body)
    assert "eyJ" not in text and "abcdefgh12" not in text
    assert "/confirm/[redacted]" in text and "/spotcheck/[redacted]" in text and "/ack/[redacted]" in text
