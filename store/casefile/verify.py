"""Verifying a case file offline (no database): every file against the manifest, the manifest against the seal,
every event's hash and link, and every other byte against the canonical layout."""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from store.casefile.build import FORMAT, GENESIS, MANIFEST, SEAL
from store.casefile.layout import read_entries, sha256, write_zip

EVENT_FIELDS = frozenset({"seq", "event_id", "subject", "chain_seq", "workflow_id", "run_id", "step_id", "kind", "actor",
                          "channel", "at", "payload", "prev_hash", "hash"})


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


def _seal_problems(found: dict[str, bytes]) -> list[Problem]:
    manifest_bytes = found[MANIFEST]
    seal = found[SEAL].decode("utf-8", errors="replace").strip()
    if seal.endswith(sha256(manifest_bytes)):
        return []
    if re.fullmatch(rf"SHA-256 of {re.escape(MANIFEST)}: [0-9a-f]{{64}}", seal):
        return [Problem(MANIFEST, "changed: its SHA-256 no longer matches the seal (SEAL.txt)")]
    return [Problem(SEAL, "changed: the seal is not a SHA-256 line")]


def _listed_problems(found: dict[str, bytes], listed: dict[str, dict[str, Any]]) -> list[Problem]:
    """Every file against the manifest: missing, changed, or not listed."""
    problems = []
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
    return problems


def _content_problems(found: dict[str, bytes], manifest: dict[str, Any], problems: list[Problem]) -> int:
    """Every audit file's chain, every definition's version (adds to `problems`); returns the events checked."""
    events = 0
    for meta in (manifest.get("subjects") or {}).values():
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
    return events


def _layout_problem(data: bytes, found: dict[str, bytes], order: list[str], sealed_at: datetime,
                    problems: list[Problem]) -> Problem | None:
    """Every other byte: rebuild the canonical layout from the contents and compare."""
    expected, regions = write_zip([(n, found.get(n, b"")) for n in order], sealed_at)
    if expected == data:
        return None
    at = next((i for i, (a, b) in enumerate(zip(expected, data)) if a != b), min(len(expected), len(data)))
    region = next((r for r in regions if r.start <= at < r.end), None)
    if region is None:
        return Problem("(archive)", f"{len(data) - len(expected):+d} bytes after the end of the archive"
                       if len(data) > len(expected) else "the archive is cut short")
    where = region.name or "(archive)"
    if any(p.file == where for p in problems):
        return None
    return Problem(where, f"byte {at} of the archive, in the {region.what}"
                          f"{' of this file' if region.name else ''}, differs from the sealed layout")


def verify_bytes(data: bytes) -> Verification:
    problems: list[Problem] = []
    whole = sha256(data)
    found: dict[str, bytes] = {}
    for name, body in read_entries(data):
        if name in found:
            problems.append(Problem(name, "appears twice in the archive"))
        found.setdefault(name, body)
    if MANIFEST not in found or SEAL not in found:
        missing = [n for n in (MANIFEST, SEAL) if n not in found]
        what = ", ".join(missing)
        problems.append(Problem(missing[0], f"missing or unreadable ({what}): not a sealed case file, or its "
                                            "structure is damaged"))
        return Verification(False, whole, problems)
    problems += _seal_problems(found)
    try:
        manifest = json.loads(found[MANIFEST])
        listed: dict[str, dict[str, Any]] = manifest["files"]
        order: list[str] = manifest["order"]
        sealed_at = datetime.fromisoformat(manifest["sealed_at"])
    except (ValueError, KeyError, TypeError) as exc:
        problems.append(Problem(MANIFEST, f"unreadable: {exc}"))
        return Verification(False, whole, problems)
    if manifest.get("format") != FORMAT:
        problems.append(Problem(MANIFEST, f"format {manifest.get('format')!r} is not {FORMAT}"))
    problems += _listed_problems(found, listed)
    events = _content_problems(found, manifest, problems)
    layout = _layout_problem(data, found, order, sealed_at, problems)
    if layout is not None:
        problems.append(layout)
    return Verification(not problems, whole, problems, manifest, len(found), events)


def verify_file(path: str | Path) -> Verification:
    return verify_bytes(Path(path).read_bytes())
