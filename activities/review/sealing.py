"""Sealing the case file 一事一档 (store/casefile/) and recording its SHA-256 as `review.sealed`."""
from __future__ import annotations

import asyncio

from sqlmodel import col, select
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.common import now as _now
from activities.review.view import save_view
from config import get_settings
from store import casefile
from store.audit import AuditEvent, NewEvent, append, list_events
from store.db import session_scope
from store.review import CaseFile, ReviewReport
from workflows.kit import names
from workflows.review import ArchiveInfo, SealRequest


def seal_case(req: SealRequest) -> ArchiveInfo:
    settings, v = get_settings(), req.record.view
    with session_scope(write=False) as s:
        done = s.get(CaseFile, v.incident_id)
        if done is not None:  # a retry after the archive was stored
            return ArchiveInfo(sha256=done.sha256, bytes=done.size, files=len(done.manifest.get("files", {})) + 2,
                               manifest_sha256=done.manifest_sha256, sealed_at=done.sealed_at)
        report = s.exec(select(ReviewReport).where(ReviewReport.incident_id == v.incident_id)
                        .order_by(col(ReviewReport.version).desc())).first()
        if report is None or not report.final:
            raise ApplicationError("no signed report to seal", type="conflict", non_retryable=True)
        events: dict[str, list[AuditEvent]] = {subject: list_events(s, subject=subject) for subject in v.subjects}
        outbox, inbox = casefile.collect_messages(s, v.subjects)
    defs = casefile.attach_definition_files(casefile.definition_versions(events), settings.definitions_dir)
    sealed_at = _now()
    contents = casefile.CaseContents(
        incident_id=v.incident_id, title=v.title, sealed_at=sealed_at, sealed_by=req.by,
        report_json=report.json_text.encode(), report_html=report.html.encode(), report_pdf=report.pdf,
        events=events, outbox=outbox, inbox=inbox, definitions=defs, timezone=settings.timezone)
    data, manifest = casefile.build(contents)
    digest = casefile.sha256(data)
    filename = casefile.filename_for(v.incident_id, sealed_at, settings.timezone)
    info = ArchiveInfo(sha256=digest, bytes=len(data), files=len(manifest["files"]) + 2,
                       manifest_sha256=manifest["manifest_sha256"], sealed_at=sealed_at)
    with session_scope() as s:
        if s.get(CaseFile, v.incident_id) is not None:
            raise ApplicationError("sealed concurrently; retrying reads the stored archive", type="retry")
        s.add(CaseFile(incident_id=v.incident_id, filename=filename, sha256=digest, size=len(data),
                       manifest_sha256=manifest["manifest_sha256"], manifest=manifest, data=data, sealed_at=sealed_at,
                       sealed_by=req.by))
        view = v.model_copy(update={"archive": info})
        save_view(s, view)
        s.flush()
        append(s, [NewEvent(subject=v.subject, kind="review.sealed", step_id="sealed", actor=req.by,
                            workflow_id=req.record.workflow_id, run_id=req.record.run_id, at=sealed_at, payload={
                                "filename": filename, "sha256": digest, "bytes": len(data), "files": info.files,
                                "manifest_sha256": manifest["manifest_sha256"], "report_version": report.version,
                                "subjects": {k: {"events": m["events"], "head_hash": m["head_hash"]}
                                             for k, m in manifest["subjects"].items()},
                                "definitions": [{k: d.get(k) for k in ("kind", "id", "version", "file")}
                                                for d in manifest["definitions"]]})])
    return info


@activity.defn(name=names.Review.SEAL)
async def seal(req: SealRequest) -> ArchiveInfo:
    return await asyncio.to_thread(seal_case, req)
