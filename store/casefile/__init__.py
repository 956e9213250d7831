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

One module per part: the ZIP layout (layout), building (build), verifying offline (verify), collecting
from the database (collect). The names below are the package's public ones (activities/, cli/, tests).
"""
from store.casefile.build import (
    FORMAT,
    GENESIS,
    MANIFEST,
    README,
    SEAL,
    CaseContents,
    build,
    canonical_time,
    event_line,
    filename_for,
    redact,
    subject_file,
)
from store.casefile.collect import attach_definition_files, collect_messages, definition_versions
from store.casefile.layout import Region, read_entries, sha256, write_zip
from store.casefile.verify import EVENT_FIELDS, Problem, Verification, check_chain, verify_bytes, verify_file

__all__ = ["EVENT_FIELDS", "FORMAT", "GENESIS", "MANIFEST", "README", "SEAL", "CaseContents", "Problem", "Region",
           "Verification", "attach_definition_files", "build", "canonical_time", "check_chain", "collect_messages",
           "definition_versions", "event_line", "filename_for", "read_entries", "redact", "sha256", "subject_file",
           "verify_bytes", "verify_file", "write_zip"]
