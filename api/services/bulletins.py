"""The monthly bulletin 通报 for the API and the console: start one for a month, list and read them, the leading
leader's approve and return (workflow updates through api/services/steps.py: a refusal is the workflow's own words,
recorded), the PDF. The content and the workflow: store/bulletins.py, workflows/bulletin.py."""
from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlmodel import Session, col, select
from temporalio.client import Client
from temporalio.exceptions import WorkflowAlreadyStartedError

from api.services.errors import ServiceError
from api.services.steps import Refused, run_step
from config import Settings
from store.db import session_scope
from store.bulletins import MONTH, STATUS_ZH, Bulletin, bulletin_subject, bulletin_workflow_id, previous_month
from workflows.bulletin import BulletinInput, BulletinView, BulletinWorkflow, DecisionIn
from workflows.common import CONFLICT, FORBIDDEN, INVALID
from workflows.kit.events import Bulletin as Kinds

STATUSES = {FORBIDDEN: 403, CONFLICT: 409, INVALID: 422}
KINDS = ("town", "department")


class BulletinError(ServiceError):
    """A bulletin that cannot be started, found or decided."""


def check_month(month: str) -> str:
    if not MONTH.match(month or ""):
        raise BulletinError(422, f"月份格式应为 YYYY-MM / month: write it like 2026-11, not {month!r}")
    return month


async def start(client: Client, settings: Settings, month: str | None, actor: str) -> dict[str, Any]:
    """Compile `month` (default: the last one) now; 409 if it has a bulletin already."""
    month = check_month(month) if month else previous_month(datetime.now(UTC), ZoneInfo(settings.timezone))
    if month >= datetime.now(ZoneInfo(settings.timezone)).strftime("%Y-%m"):
        raise BulletinError(422, f"{month}尚未结束,只能通报已结束的月份 / {month} has not ended yet")
    with session_scope(write=False) as s:
        row = s.get(Bulletin, month)
    if row is not None:
        raise BulletinError(409, f"{month}的通报已在办理({STATUS_ZH.get(row.status, row.status)}) / "
                                 f"the bulletin of {month} exists already ({row.status})")
    wid = bulletin_workflow_id(month)
    try:
        await client.start_workflow(BulletinWorkflow.run, BulletinInput(month=month, started_by=actor), id=wid,
                                    task_queue=settings.task_queue)
    except WorkflowAlreadyStartedError as exc:
        raise BulletinError(409, f"{month}的通报正在汇编 / the bulletin of {month} is being compiled") from exc
    return {"id": month, "workflow_id": wid, "subject": bulletin_subject(month)}


def summary(row: Bulletin) -> dict[str, Any]:
    return {"id": row.id, "month_zh": row.data.get("month_zh") or row.id, "status": row.status,
            "status_zh": STATUS_ZH.get(row.status, row.status), "version": row.version, "subject": row.subject,
            "workflow_id": row.workflow_id, "since": row.since, "until": row.until, "compiled_at": row.compiled_at,
            "approved_by": row.approved_by, "approved_at": row.approved_at, "sealed_at": row.sealed_at,
            "sha256_json": row.sha256_json, "sha256_pdf": row.sha256_pdf, "seal_sha256": row.seal_sha256,
            "returns": row.returns, "sent": len(row.sent)}


def listing(s: Session, limit: int = 24) -> list[dict[str, Any]]:
    return [summary(r) for r in s.exec(select(Bulletin).order_by(col(Bulletin.id).desc()).limit(limit))]


def _row(s: Session, bulletin_id: str) -> Bulletin:
    row = s.get(Bulletin, bulletin_id)
    if row is None:
        raise BulletinError(404, f"无此通报 / no bulletin {bulletin_id!r} (write the month like 2026-11)")
    return row


def one(s: Session, bulletin_id: str, kind: str | None = None, below_only: bool = False) -> dict[str, Any]:
    """The bulletin with its content; the ranking of one kind of unit, or only the units below a threshold."""
    if kind is not None and kind not in KINDS:
        raise BulletinError(422, f"kind 须为 {' 或 '.join(KINDS)} / kind: one of {', '.join(KINDS)}")
    row = _row(s, bulletin_id)
    data = dict(row.data)
    ranking = {k: v for k, v in (data.get("ranking") or {}).items() if kind is None or k == kind}
    if below_only:
        ranking = {k: [r for r in v if r["breaches"]] for k, v in ranking.items()}
    data["ranking"] = ranking
    return {**summary(row), "content": data}


def pdf(s: Session, bulletin_id: str) -> tuple[bytes, Bulletin]:
    row = _row(s, bulletin_id)
    if not row.pdf:
        raise BulletinError(409, f"{bulletin_id}的通报尚未汇编完成 / the bulletin is still being compiled")
    return row.pdf, row


def _workflow_of(bulletin_id: str) -> tuple[str, str]:
    with session_scope(write=False) as s:
        row = _row(s, bulletin_id)
        return row.workflow_id, row.subject


async def decide(client: Client, bulletin_id: str, action: str, actor: str, role: str, reason: str = "") -> BulletinView:
    """approve | return: the workflow's update; its refusal (403 role, 409 state, 422 no reason) as a BulletinError."""
    wid, subject = await asyncio.to_thread(_workflow_of, bulletin_id)
    try:
        return await run_step(client, workflow_id=wid, subject=subject, refused_kind=Kinds.REFUSED, action=action,
                              update=action, req=DecisionIn(actor=actor, role=role, reason=reason),
                              result_type=BulletinView, statuses=STATUSES,
                              ended=f"通报已办结,不能再{'审定' if action == 'approve' else '退回'} / "
                                    f"the bulletin's workflow has ended; nothing to {action}")
    except Refused as r:
        raise BulletinError(r.status, r.why) from r
