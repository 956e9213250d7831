"""The monthly bulletin 通报's side effects (workflows/bulletin.py): compiling a month (store/bulletins.py, the HTML and
the PDF), recording its steps (the read model and the audit chain `bulletin/<YYYY-MM>` in one transaction), sealing
the approved version and sending it to the units' heads (one Chinese SMS each, through the outbox)."""
from __future__ import annotations

import asyncio
from typing import Any
from zoneinfo import ZoneInfo

from sqlmodel import Session, col, select
from temporalio import activity

from activities.common import now as _now
from activities.common import audit_events, contact, sms_each, write
from activities.delivery import deliver
from config import get_settings
from definitions.loader import cached_library
from store import report
from store.audit import NewEvent, append
from store.bulletins import Bulletin, bulletin_subject, compile_data, month_range, previous_month, render_html
from store.db import session_scope
from store.directory import Person, Post
from workflows.bulletin import BulletinView, CompileRequest, Compiled, RecordRequest, Sealed, SealRequest, SendRequest
from workflows.kit import names
from workflows.kit.events import Bulletin as Kinds

HEADS = {"town": "town_head", "department": "dept_head"}  # a unit's head: who receives its bulletin


def _view_for_render(s: Any, row: Bulletin, approved: bool) -> dict[str, Any]:
    name = ""
    if approved and row.approved_by:
        p = s.get(Person, row.approved_by)  # in the caller's session (it holds the write lock on SQLite)
        name = p.name if p else ""
    return {"version": row.version, "compiled_at": row.compiled_at, "approved": approved,
            "approved_by_name": name, "approved_at": row.approved_at}


@activity.defn(name=names.Bulletin.COMPILE)
async def compile_(req: CompileRequest) -> Compiled:
    settings = get_settings()
    tz = ZoneInfo(settings.timezone)
    month = req.month or previous_month(req.at, tz)

    def work() -> Compiled:
        lib = cached_library(settings.definitions_dir)
        rules, duty = lib.assessment(), lib.duty()
        if rules is None or duty is None:
            raise RuntimeError("the assessment or duty definitions are not usable: " +
                               "; ".join(str(e) for e in lib.errors[:5]))
        with session_scope() as s:
            row = s.get(Bulletin, month)
            if row is not None and row.workflow_id != req.workflow_id:
                return Compiled(month=month, version=row.version, duplicate_of=row.workflow_id)
            if row is not None and row.version >= req.version:  # a retry: the version stands
                return Compiled(month=month, version=row.version, sha256_json=row.sha256_json,
                                sha256_pdf=row.sha256_pdf)
            data = compile_data(s, month, tz, rules.model, duty, _now())
            since, until = month_range(month, tz)
            if row is None:
                row = Bulletin(id=month, workflow_id=req.workflow_id, subject=bulletin_subject(month), since=since,
                               until=until)
                s.add(row)
            row.version, row.data, row.compiled_at, row.status = req.version, data, _now(), "awaiting"
            html = render_html(data, _view_for_render(s, row, False), settings.timezone)
            pdf = report.render_pdf(html)
            row.html, row.pdf = html, pdf
            row.sha256_json, row.sha256_pdf = report.sha256(report.canonical_json(data)), report.sha256(pdf)
            row.updated_at = _now()
            s.flush()
            append(s, [NewEvent(subject=row.subject, kind=Kinds.COMPILED, step_id=f"v{req.version}/compiled",
                                workflow_id=req.workflow_id, run_id=req.run_id, actor=req.by, at=req.at,
                                payload={"month": month, "version": req.version, "sha256_json": row.sha256_json,
                                         "sha256_pdf": row.sha256_pdf, "rules": rules.model.id,
                                         "rules_version": rules.version, "units": data["units"],
                                         "below": [u["unit_id"] for u in data["below"]],
                                         "late_reports": len(data["late_reports"]),
                                         "missing_reports": len(data["missing_reports"]),
                                         "drill_weeks_below": data["drill_weeks_below"]})])
            return Compiled(month=month, version=req.version, sha256_json=row.sha256_json, sha256_pdf=row.sha256_pdf)

    return await asyncio.to_thread(work)


def _save_view(s: Session, v: BulletinView) -> Bulletin:
    row = s.get(Bulletin, v.month)
    row.status = v.status
    row.returns = [r.model_dump(mode="json") for r in v.returns]
    row.approved_by, row.approved_at = v.approved_by, v.approved_at
    row.updated_at = _now()
    return row


@activity.defn(name=names.Bulletin.RECORD)
async def record(req: RecordRequest) -> None:
    await write(lambda s: _save_view(s, req.view),
                audit_events(bulletin_subject(req.view.month), req.workflow_id, req.run_id, req.events))


@activity.defn(name=names.Bulletin.SEAL)
async def seal(req: SealRequest) -> Sealed:
    """The approved version as issued (the approval on it, no draft mark): its PDF's hash and a seal over the hashes
    of its canonical JSON and PDF, like a case file's; stored and recorded as `bulletin.sealed`."""
    settings = get_settings()

    def work() -> Sealed:
        with session_scope() as s:
            row = _save_view(s, req.view)
            if row.sealed_at is not None and row.seal_sha256:  # a retry
                return Sealed(sha256_pdf=row.sha256_pdf, seal_sha256=row.seal_sha256, sealed_at=row.sealed_at)
            html = render_html(row.data, _view_for_render(s, row, True), settings.timezone)
            pdf = report.render_pdf(html)
            sha_json = report.sha256(report.canonical_json(row.data))
            sha_pdf = report.sha256(pdf)
            seal_sha = report.sha256(f"{row.id}\n{row.version}\n{sha_json}\n{sha_pdf}")
            at = _now()
            row.html, row.pdf, row.sha256_json, row.sha256_pdf = html, pdf, sha_json, sha_pdf
            row.status, row.sealed_at, row.seal_sha256 = "sealed", at, seal_sha
            s.flush()
            append(s, [NewEvent(subject=row.subject, kind=Kinds.SEALED, step_id="sealed", workflow_id=req.workflow_id,
                                run_id=req.run_id, actor=row.approved_by or "system", at=at,
                                payload={"month": row.id, "version": row.version, "sha256_json": sha_json,
                                         "sha256_pdf": sha_pdf, "seal_sha256": seal_sha, "bytes": len(pdf),
                                         "approved_by": row.approved_by,
                                         "approved_sha256_json": req.view.sha256_json})])
            return Sealed(sha256_pdf=sha_pdf, seal_sha256=seal_sha, sealed_at=at)

    return await asyncio.to_thread(work)


def unit_text(month_zh: str, r: dict[str, Any], total: int) -> str:
    """A unit head's SMS (Chinese only): the unit's place, score and what fell short."""
    score = f"综合得分{r['score']:.1f}分,排名第{r['rank']}/{total}" if r.get("score") is not None else "本月无计分记录"
    short = ";".join(f"{b['label_zh']}未达标(要求{b['rule_zh']})" for b in r["breaches"])
    return (f"【通报】{month_zh}应急值守工作情况通报已经带班领导审定印发。{r['name']}:{score}"
            + (f";{short}" if short else ";各项指标均达标") + "。请登录值班系统查看通报全文。")


@activity.defn(name=names.Bulletin.SEND)
async def send(req: SendRequest) -> None:
    def who() -> tuple[Bulletin, list[tuple[dict, Any]]]:
        with session_scope(write=False) as s:
            row = s.get(Bulletin, req.view.month)
            ranked = [r for kind in ("town", "department") for r in row.data["ranking"].get(kind, [])]
            posts = {(p.org_unit_id, p.position_code): p
                     for p in s.exec(select(Post).where(col(Post.position_code).in_(list(HEADS.values()))))}
            head = {r["unit_id"]: posts.get((r["unit_id"], HEADS[r["kind"]])) for r in ranked}
            persons = {p.id: p for p in s.exec(select(Person).where(
                col(Person.id).in_([p.person_id for p in head.values() if p is not None])))}
            return row, [(r, contact(persons[p.person_id]) if (p := head[r["unit_id"]]) is not None
                          and p.person_id in persons else None) for r in ranked]

    row, heads = await asyncio.to_thread(who)
    totals = {kind: sum(1 for r in row.data["ranking"].get(kind, []) if r.get("score") is not None)
              for kind in ("town", "department")}
    deliveries = []
    for r, c in heads:
        if c is None:
            continue
        deliveries += sms_each([c], lambda c: f"{req.workflow_id}/sent/{row.version}/{c.person_id}",
                               unit_text(row.data["month_zh"], r, totals[r["kind"]]), subject=row.subject,
                               meta={"purpose": "bulletin", "procedure": "bulletin"})
    outcomes = await deliver(deliveries)
    sent = [{"unit_id": r["unit_id"], "person_id": c.person_id} for r, c in heads if c is not None and c.mobile]

    def record_sent() -> None:
        with session_scope() as s:
            b = s.get(Bulletin, row.id)
            b.sent, b.updated_at = sent, _now()
            s.flush()
            append(s, [NewEvent(subject=b.subject, kind=Kinds.SENT, step_id="sent", workflow_id=req.workflow_id,
                                run_id=req.run_id, at=_now(),
                                payload={"month": b.id, "version": b.version, "sent_to": sent,
                                         "statuses": [o.status for o in outcomes],
                                         "no_head": [r["unit_id"] for r, c in heads if c is None]})])

    await asyncio.to_thread(record_sent)


ALL = [compile_, record, seal, send]
