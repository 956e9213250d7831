"""The case file 一事一档 (seed 000 任务 8: 做好台账资料归档, 做到一事一档, 实现全程痕迹化管理).

One archive per incident: the signed event report (JSON, HTML, PDF), the whole audit trail of
every subject of the case (JSON lines, with each event's hashes), every message sent and
received, the definition files whose versions were used, a manifest of SHA-256 hashes, and a
seal (the manifest's hash). Sealing records the archive's own hash as an audit event
(`review.sealed`), so the anchored audit chain vouches for the archive.

The archive is a ZIP written by this module byte for byte (stored, no compression, fixed
times and attributes): any ZIP tool opens it, and `verify()` can rebuild the exact bytes
from the contents and the manifest. So a change of any single byte is found and named —
a file's content (its hash differs from the manifest), its header or directory entry (the
bytes differ from the canonical layout there), the manifest (the seal does not match), an
audit file (an event's hash or link is broken). `verify()` needs no database.
"""
from __future__ import annotations

import hashlib
import json
import re
import struct
import zlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import quote

FORMAT = "yingji-casefile/1"
MANIFEST, SEAL = "manifest.json", "SEAL.txt"
GENESIS = "0" * 64
_LOCAL, _CENTRAL, _END = 0x04034B50, 0x02014B50, 0x06054B50
_LOCAL_FMT, _CENTRAL_FMT, _END_FMT = "<IHHHHHIIIHH", "<IHHHHHHIIIHHHHHII", "<IHHHHIIH"
EVENT_FIELDS = frozenset({"seq", "event_id", "subject", "chain_seq", "workflow_id", "run_id", "step_id", "kind", "actor",
                          "channel", "at", "payload", "prev_hash", "hash"})
# every signed one-time link (acknowledgement, contact confirmation, 六问 form): whoever holds one
# answers in its person's name
_ONE_TIME_LINK = re.compile(r"(/(?:ack|confirm|spotcheck)/)[A-Za-z0-9._~-]{8,}")


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# ------------------------------------------------------------------ the ZIP layout (written and checked here)


def _dos_time(at: datetime) -> tuple[int, int]:
    at = at.astimezone(UTC)
    year = min(max(at.year, 1980), 2107)
    return (at.hour << 11) | (at.minute << 5) | (at.second // 2), ((year - 1980) << 9) | (at.month << 5) | at.day


@dataclass
class Region:
    start: int
    end: int
    name: str
    what: str  # "header" | "content" | "directory entry" | "end record"


def write_zip(entries: list[tuple[str, bytes]], when: datetime) -> tuple[bytes, list[Region]]:
    """A stored (uncompressed) ZIP of the entries in this order, and where each part lies."""
    if len(entries) >= 0xFFFF:
        raise ValueError("too many files for one archive")
    dos_t, dos_d = _dos_time(when)
    out = bytearray()
    regions: list[Region] = []
    central = bytearray()
    for name, data in entries:
        raw_name = name.encode()
        flags = 0x800 if not name.isascii() else 0  # UTF-8 names
        crc = zlib.crc32(data) & 0xFFFFFFFF
        if len(out) + len(data) > 0xFFFFFFF0:
            raise ValueError("archive larger than 4 GiB")
        offset = len(out)
        out += struct.pack(_LOCAL_FMT, _LOCAL, 20, flags, 0, dos_t, dos_d, crc, len(data), len(data), len(raw_name), 0)
        out += raw_name
        regions.append(Region(offset, len(out), name, "header"))
        out += data
        regions.append(Region(len(out) - len(data), len(out), name, "content"))
        central_start = len(central)
        central += struct.pack(_CENTRAL_FMT, _CENTRAL, (3 << 8) | 20, 20, flags, 0, dos_t, dos_d, crc, len(data),
                               len(data), len(raw_name), 0, 0, 0, 0, (0o100644 << 16), offset)
        central += raw_name
        regions.append(Region(central_start, len(central), name, "directory entry"))  # relative; shifted below
    cd_offset = len(out)
    for r in regions:
        if r.what == "directory entry":
            r.start += cd_offset
            r.end += cd_offset
    out += central
    end_start = len(out)
    out += struct.pack(_END_FMT, _END, 0, 0, len(entries), len(entries), len(central), cd_offset, 0)
    regions.append(Region(end_start, len(out), "", "end record"))
    return bytes(out), regions


def _by_directory(data: bytes) -> list[tuple[str, bytes]] | None:
    """The entries through the central directory (as `write_zip` lays it out: no comment, no extras)."""
    end = struct.calcsize(_END_FMT)
    if len(data) < end:
        return None
    sig, _, _, _, count, cd_size, cd_offset, _ = struct.unpack_from(_END_FMT, data, len(data) - end)
    if sig != _END or cd_offset + cd_size != len(data) - end:
        return None
    out, pos, size = [], cd_offset, struct.calcsize(_CENTRAL_FMT)
    for _ in range(count):
        if pos + size > len(data):
            return None
        f = struct.unpack_from(_CENTRAL_FMT, data, pos)
        if f[0] != _CENTRAL:
            return None
        n_name, n_extra, n_comment, csize, offset = f[10], f[11], f[12], f[8], f[16]
        raw_name = data[pos + size:pos + size + n_name]
        body = offset + struct.calcsize(_LOCAL_FMT) + n_name  # the local name has the same length
        out.append((raw_name.decode("utf-8", errors="replace"), data[body:body + csize]))
        pos += size + n_name + n_extra + n_comment
    return out


def _by_headers(data: bytes) -> list[tuple[str, bytes]]:
    """The entries walking the local headers from the start (when the directory is damaged)."""
    out: list[tuple[str, bytes]] = []
    pos, size = 0, struct.calcsize(_LOCAL_FMT)
    while pos + size <= len(data):
        fields = struct.unpack_from(_LOCAL_FMT, data, pos)
        if fields[0] != _LOCAL:
            break
        n_name, n_extra, csize = fields[9], fields[10], fields[7]
        start = pos + size
        name = data[start:start + n_name].decode("utf-8", errors="replace")
        body = start + n_name + n_extra
        out.append((name, data[body:body + csize]))
        pos = body + csize
    return out


def read_entries(data: bytes) -> list[tuple[str, bytes]]:
    """The entries in archive order: through the central directory, else walking the local headers, else
    with the standard library (any ZIP). A damaged size or name gives a wrong entry, which the manifest
    then names; a damaged header or directory byte is named by the comparison with the sealed layout."""
    for way in (_by_directory, _by_headers):
        found = way(data)
        if found:
            return found
    import io
    import zipfile

    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            return [(i.filename, zf.read(i)) for i in zf.infolist()]
    except (zipfile.BadZipFile, OSError, ValueError, zlib.error, KeyError):
        return []


# ------------------------------------------------------------------ building


def subject_file(subject: str) -> str:
    return f"audit/{quote(subject, safe='')}.jsonl"


def canonical_time(at: datetime) -> str:
    return at.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def event_line(ev: Any) -> dict[str, Any]:
    """An audit event as one JSON object: every field the hash covers, plus its position."""
    return {"seq": ev.seq, "event_id": ev.event_id, "subject": ev.subject, "chain_seq": ev.chain_seq,
            "workflow_id": ev.workflow_id, "run_id": ev.run_id, "step_id": ev.step_id, "kind": ev.kind,
            "actor": ev.actor, "channel": ev.channel, "at": canonical_time(ev.at), "payload": ev.payload,
            "prev_hash": ev.prev_hash, "hash": ev.hash}


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
    events: dict[str, list[Any]]  # subject -> events in chain order (AuditEvent rows or alike)
    outbox: list[dict[str, Any]] = field(default_factory=list)
    inbox: list[dict[str, Any]] = field(default_factory=list)
    definitions: list[dict[str, Any]] = field(default_factory=list)  # kind, id, version, path, content (bytes | None)


def filename_for(incident_id: str, sealed_at: datetime) -> str:
    return f"casefile-{quote(incident_id, safe='')}-{sealed_at.astimezone(UTC):%Y%m%dT%H%M%SZ}.zip"


def build(c: CaseContents) -> tuple[bytes, dict[str, Any]]:
    """The archive's bytes and its manifest."""
    files: list[tuple[str, bytes]] = [
        ("README.txt", README.format(incident_id=c.incident_id, title=c.title, sealed_at=canonical_time(c.sealed_at),
                                     sealed_by=c.sealed_by, filename=filename_for(c.incident_id, c.sealed_at)).encode()),
        ("report/event_report.json", c.report_json), ("report/event_report.html", c.report_html)]
    if c.report_pdf is not None:
        files.append(("report/event_report.pdf", c.report_pdf))
    subjects: dict[str, Any] = {}
    for subject, events in c.events.items():
        rows = [event_line(e) for e in events]
        path = subject_file(subject)
        files.append((path, _jsonl(rows)))
        subjects[subject] = {"file": path, "events": len(rows), "head_hash": rows[-1]["hash"] if rows else GENESIS}
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


# ------------------------------------------------------------------ verifying (offline)


@dataclass
class Problem:
    file: str
    reason: str

    def __str__(self) -> str:
        return f"{self.file}: {self.reason}"


@dataclass
class Verification:
    ok: bool
    sha256: str
    problems: list[Problem]
    manifest: dict[str, Any] | None = None
    files: int = 0
    events: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "sha256": self.sha256, "files": self.files, "events": self.events,
                "problems": [{"file": p.file, "reason": p.reason} for p in self.problems],
                "incident_id": (self.manifest or {}).get("incident_id"),
                "sealed_at": (self.manifest or {}).get("sealed_at")}


def check_chain(path: str, raw: bytes, expect: dict[str, Any] | None) -> tuple[list[Problem], int]:
    """Recompute every event's hash and link, as `store.audit.verify` does in the database."""
    from store.audit import compute_hash  # the very function that hashed the events (pure; no database)

    problems: list[Problem] = []
    prev, n = GENESIS, 0
    for n, line in enumerate(raw.decode("utf-8", errors="replace").splitlines(), start=1):
        try:
            row = json.loads(line)
            missing = EVENT_FIELDS - set(row)
            if missing:
                raise KeyError(", ".join(sorted(missing)))
            at = datetime.fromisoformat(row["at"])
            ev = SimpleNamespace(**{**row, "at": at})
        except (ValueError, KeyError, TypeError) as exc:
            problems.append(Problem(path, f"line {n}: not an audit event ({exc})"))
            return problems, n
        if row.get("chain_seq") != n:
            problems.append(Problem(path, f"line {n}: chain position {row.get('chain_seq')} where {n} was expected"))
        if row.get("prev_hash") != prev:
            problems.append(Problem(path, f"line {n}: the link to the previous event is broken"))
        if compute_hash(ev) != row.get("hash"):
            problems.append(Problem(path, f"line {n} (seq {row.get('seq')}, {row.get('kind')}): the event's hash does "
                                          "not match its content"))
        if problems:
            return problems, n
        prev = row["hash"]
    if expect is not None and (n != expect.get("events") or prev != expect.get("head_hash")):
        problems.append(Problem(path, f"{n} events ending in {prev[:12]}…; the manifest says {expect.get('events')} "
                                      f"ending in {str(expect.get('head_hash'))[:12]}…"))
    return problems, n


def verify_bytes(data: bytes) -> Verification:
    problems: list[Problem] = []
    whole = sha256(data)
    entries = read_entries(data)
    found: dict[str, bytes] = {}
    for name, body in entries:
        if name in found:
            problems.append(Problem(name, "appears twice in the archive"))
        found.setdefault(name, body)
    if MANIFEST not in found or SEAL not in found:
        missing = [n for n in (MANIFEST, SEAL) if n not in found]
        what = ", ".join(missing)
        problems.append(Problem(missing[0], f"missing or unreadable ({what}): not a sealed case file, or its "
                                            "structure is damaged"))
        return Verification(False, whole, problems)
    manifest_bytes = found[MANIFEST]
    seal = found[SEAL].decode("utf-8", errors="replace").strip()
    if not seal.endswith(sha256(manifest_bytes)):
        if re.fullmatch(rf"SHA-256 of {re.escape(MANIFEST)}: [0-9a-f]{{64}}", seal):
            problems.append(Problem(MANIFEST, "changed: its SHA-256 no longer matches the seal (SEAL.txt)"))
        else:
            problems.append(Problem(SEAL, "changed: the seal is not a SHA-256 line"))
    try:
        manifest = json.loads(manifest_bytes)
        listed: dict[str, dict[str, Any]] = manifest["files"]
        order: list[str] = manifest["order"]
        sealed_at = datetime.fromisoformat(manifest["sealed_at"])
    except (ValueError, KeyError, TypeError) as exc:
        problems.append(Problem(MANIFEST, f"unreadable: {exc}"))
        return Verification(False, whole, problems)
    if manifest.get("format") != FORMAT:
        problems.append(Problem(MANIFEST, f"format {manifest.get('format')!r} is not {FORMAT}"))

    for name, meta in listed.items():
        body = found.get(name)
        if body is None:
            problems.append(Problem(name, "listed in the manifest but missing from the archive"))
        elif sha256(body) != meta.get("sha256") or len(body) != meta.get("bytes"):
            problems.append(Problem(name, f"content changed: SHA-256 {sha256(body)[:16]}… ({len(body)} bytes), "
                                          f"the manifest says {str(meta.get('sha256'))[:16]}… ({meta.get('bytes')} bytes)"))
    for name in found:
        if name not in listed and name not in (MANIFEST, SEAL):
            problems.append(Problem(name, "is in the archive but not in the manifest"))

    events = 0
    for subject, meta in (manifest.get("subjects") or {}).items():
        path = meta.get("file")
        if path in found:
            chain_problems, n = check_chain(path, found[path], meta)
            problems.extend(p for p in chain_problems if not any(q.file == p.file for q in problems))
            events += n
    for d in manifest.get("definitions") or []:
        path = d.get("file")
        if path and path in found and sha256(found[path])[:16] != d.get("version"):
            if not any(q.file == path for q in problems):
                problems.append(Problem(path, f"is not version {d.get('version')} of {d.get('kind')}/{d.get('id')}"))

    # every other byte: rebuild the canonical layout from the contents and compare
    expected, regions = write_zip([(n, found.get(n, b"")) for n in order], sealed_at)
    if expected != data:
        at = next((i for i, (a, b) in enumerate(zip(expected, data)) if a != b), min(len(expected), len(data)))
        region = next((r for r in regions if r.start <= at < r.end), None)
        if region is None:
            problems.append(Problem("(archive)", f"{len(data) - len(expected):+d} bytes after the end of the archive"
                                    if len(data) > len(expected) else "the archive is cut short"))
        else:
            where = region.name or "(archive)"
            if not any(p.file == where for p in problems):
                problems.append(Problem(where, f"byte {at} of the archive, in the {region.what}"
                                               f"{' of this file' if region.name else ''}, differs from the sealed layout"))
    return Verification(not problems, whole, problems, manifest, len(found), events)


def verify_file(path: str | Path) -> Verification:
    return verify_bytes(Path(path).read_bytes())


# ------------------------------------------------------------------ collecting from the database


def definition_versions(events: dict[str, list[Any]]) -> list[dict[str, Any]]:
    """(kind, id, version) of every definition the case's events say was used."""
    seen: dict[tuple[str, str], dict[str, Any]] = {}
    for evs in events.values():
        for ev in evs:
            p, k = ev.payload, ev.kind
            found = None
            if k == "incident.received" and p.get("rules_version"):
                found = ("reporting", p.get("rules"), p["rules_version"])
            elif k == "callout.plan_chosen" and p.get("version"):
                found = ("callout", p.get("plan"), p["version"])
            elif k == "review.started" and p.get("template_version"):
                found = ("review", p.get("template"), p["template_version"])
            elif k == "activation.started" and p.get("plan_version"):  # (a dispatch plan's "version" is its draft's)
                found = ("plans", p.get("plan"), p["plan_version"])
            if found is not None and found[2]:
                seen.setdefault((found[0], str(found[2])), {"kind": found[0], "id": found[1], "version": str(found[2])})
    return sorted(seen.values(), key=lambda d: (d["kind"], str(d["id"]), d["version"]))


def attach_definition_files(defs: list[dict[str, Any]], root: Path) -> list[dict[str, Any]]:
    """Find each version's file under the definitions folder by its hash (a version is the file's SHA-256)."""
    index: dict[str, Path] = {}
    if root.is_dir():
        for path in sorted(root.rglob("*.y*ml")):
            index.setdefault(sha256(path.read_bytes())[:16], path)
    for d in defs:
        path = index.get(d["version"])
        d["path"] = path.relative_to(root).as_posix() if path else None
        d["content"] = path.read_bytes() if path else None
    return defs


def collect_messages(session: Any, subjects: list[str]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Every message sent for the case's subjects and every reply to them (numbers masked, links redacted)."""
    from sqlmodel import col, select

    from store.directory import mask_mobile
    from store.messages import InboundMessage, OutboxMessage

    out_rows = list(session.exec(select(OutboxMessage).where(col(OutboxMessage.subject).in_(subjects))
                                 .order_by(OutboxMessage.id))) if subjects else []
    ids = [m.id for m in out_rows]
    in_rows = list(session.exec(select(InboundMessage).where(col(InboundMessage.outbox_id).in_(ids))
                                .order_by(InboundMessage.id))) if ids else []
    outbox = []
    for m in out_rows:
        d = m.model_dump(mode="json")
        d["to"] = d["to"] if m.channel == "im" else mask_mobile(m.to)
        d["body"], d["ack_url"] = redact(m.body), "[redacted]" if m.ack_url else None
        outbox.append(d)
    inbox = []
    for m in in_rows:
        d = m.model_dump(mode="json")
        d["from_number"] = mask_mobile(m.from_number) if m.channel != "im" else m.from_number
        inbox.append(d)
    return outbox, inbox
