"""Building a case file: the report, every subject's audit trail (JSON lines with each event's hashes), the
messages, the definition files, a manifest of SHA-256 hashes and the seal (the manifest's hash)."""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from store.casefile.layout import sha256, write_zip

FORMAT = "yingji-casefile/1"
MANIFEST, SEAL = "manifest.json", "SEAL.txt"
GENESIS = "0" * 64
# every signed one-time link (acknowledgement, contact confirmation, 六问 form): whoever holds one
# answers in its person's name
_ONE_TIME_LINK = re.compile(r"(/(?:ack|confirm|spotcheck|a)/)[A-Za-z0-9._~-]{8,}")


def subject_file(subject: str) -> str:
    return f"audit/{quote(subject, safe='')}.jsonl"


def canonical_time(at: datetime) -> str:
    return at.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def event_line(ev: Any) -> dict[str, Any]:
    """An audit event as one JSON object: every field the hash covers, plus its position (and its chain, when
    a shard's: not the subject's own)."""
    line = {"seq": ev.seq, "event_id": ev.event_id, "subject": ev.subject, "chain_seq": ev.chain_seq,
            "workflow_id": ev.workflow_id, "run_id": ev.run_id, "step_id": ev.step_id, "kind": ev.kind,
            "actor": ev.actor, "channel": ev.channel, "at": canonical_time(ev.at), "payload": ev.payload,
            "prev_hash": ev.prev_hash, "hash": ev.hash}
    if (chain := getattr(ev, "chain", None) or ev.subject) != ev.subject:
        line["chain"] = chain
    return line


def by_chain(subject: str, events: list[Any]) -> dict[str, list[Any]]:
    """A subject's events split by chain (its own first, then each shard's), each in chain order: one audit file
    per chain, so that each file is one hash chain from its genesis."""
    out: dict[str, list[Any]] = {subject: []}
    for ev in events:
        out.setdefault(getattr(ev, "chain", None) or ev.subject, []).append(ev)
    for rows in out.values():
        rows.sort(key=lambda e: e.chain_seq)
    return out


def _jsonl(rows: list[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(r, ensure_ascii=False, sort_keys=True, separators=(",", ":"), default=str) + "\n"
                   for r in rows).encode()


def redact(text: str | None) -> str | None:
    """Signed one-time links are credentials: they do not go into the archive."""
    return _ONE_TIME_LINK.sub(r"\1[redacted]", text) if text else text


README = """一事一档 案卷 · yingji case file
===================================

事件 Incident: {incident_id}  {title}
封存 Sealed:   {sealed_at}  by {sealed_by}

内容 Contents
  report/event_report.pdf|html|json  事件报告(带班领导签发) The signed event report
  audit/*.jsonl                       全程审计记录(每条含前序哈希与本条哈希) The audit trail, hash-chained
  messages/outbox.jsonl, inbox.jsonl  全部收发消息 Every message sent and received
  definitions/                        所用预案/规则的版本文件 The definition files in force
  manifest.json                       文件清单及SHA-256 Every file's SHA-256
  SEAL.txt                            清单的SHA-256 The manifest's SHA-256

校验 Verify (offline, no database):  yingji archive verify {filename}
案卷本身的SHA-256记录在审计事件 review.sealed 中。The archive's own SHA-256 is in the audit event review.sealed.
"""


@dataclass
class CaseContents:
    incident_id: str
    title: str
    sealed_at: datetime
    sealed_by: str
    report_json: bytes
    report_html: bytes
    report_pdf: bytes | None
    events: dict[str, list[Any]]  # subject -> events (AuditEvent rows or alike) in seq order (its chains merged)
    outbox: list[dict[str, Any]] = field(default_factory=list)
    inbox: list[dict[str, Any]] = field(default_factory=list)
    definitions: list[dict[str, Any]] = field(default_factory=list)  # kind, id, version, path, content (bytes | None)
    timezone: str = "Asia/Shanghai"  # the office's: the archive's file name carries its local time of sealing


def filename_for(incident_id: str, sealed_at: datetime, timezone: str = "Asia/Shanghai") -> str:
    """casefile-<incident>-<the local date and time of sealing>.zip, as the duty office files it."""
    from zoneinfo import ZoneInfo

    return f"casefile-{quote(incident_id, safe='')}-{sealed_at.astimezone(ZoneInfo(timezone)):%Y%m%d-%H%M%S}.zip"


def build(c: CaseContents) -> tuple[bytes, dict[str, Any]]:
    """The archive's bytes and its manifest."""
    files: list[tuple[str, bytes]] = [
        ("README.txt", README.format(incident_id=c.incident_id, title=c.title, sealed_at=canonical_time(c.sealed_at),
                                     sealed_by=c.sealed_by,
                                     filename=filename_for(c.incident_id, c.sealed_at, c.timezone)).encode()),
        ("report/event_report.json", c.report_json), ("report/event_report.html", c.report_html)]
    if c.report_pdf is not None:
        files.append(("report/event_report.pdf", c.report_pdf))
    subjects: dict[str, Any] = {}
    for subject, events in c.events.items():
        for chain, chain_events in by_chain(subject, events).items():  # (the manifest's "subjects" are chains)
            rows = [event_line(e) for e in chain_events]
            path = subject_file(chain)
            files.append((path, _jsonl(rows)))
            subjects[chain] = {"file": path, "events": len(rows), "head_hash": rows[-1]["hash"] if rows else GENESIS}
    files.append(("messages/outbox.jsonl", _jsonl(c.outbox)))
    files.append(("messages/inbox.jsonl", _jsonl(c.inbox)))
    defs = []
    for d in c.definitions:
        entry = {k: d.get(k) for k in ("kind", "id", "version")}
        if d.get("content") is not None:
            entry["file"] = f"definitions/{d['path']}"
            files.append((entry["file"], d["content"]))
        else:
            entry["file"] = None
            entry["note"] = "no definition file with this version was found when sealing"
        defs.append(entry)
    names = [n for n, _ in files]
    if len(names) != len(set(names)):
        raise ValueError("two files of the case file have the same name")
    manifest = {
        "format": FORMAT, "incident_id": c.incident_id, "title": c.title,
        "sealed_at": canonical_time(c.sealed_at), "sealed_by": c.sealed_by,
        "subjects": subjects, "definitions": defs,
        "files": {name: {"sha256": sha256(data), "bytes": len(data)} for name, data in files},
        "order": [*names, MANIFEST, SEAL],
    }
    manifest_bytes = json.dumps(manifest, ensure_ascii=False, sort_keys=True, indent=1).encode()
    seal = f"SHA-256 of {MANIFEST}: {sha256(manifest_bytes)}\n".encode()
    archive, _ = write_zip([*files, (MANIFEST, manifest_bytes), (SEAL, seal)], c.sealed_at)
    manifest["manifest_sha256"] = sha256(manifest_bytes)
    return archive, manifest
