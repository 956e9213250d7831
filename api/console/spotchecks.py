"""六问 spot checks 六问抽查 in the console: the checks (each a real call-out's sample of village flood
officers asked six questions), one check with its questions, every answer (the "no"s marked) and the
follow-ups with their countdowns (a town resolves one here), and the sweep's schedule under its own heading.

The same services as `/api/spotchecks` (api/services/duty/spotchecks.py)."""
from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from api.console import auth, roles
from api.console.i18n import STRINGS
from api.console.pages import form_error, render, schedules_of
from api.deps import get_temporal
from api.services import duty as svc
from api.services.directory import names
from store.db import session_scope
from workflows.spotcheck import ResolveIn

router = APIRouter(prefix="/console/spotchecks", tags=["console"], include_in_schema=False)

STRINGS.update({
    "spotchecks": ("六问抽查", "六问 spot checks"),
    "spotcheck": ("六问抽查", "Spot check"),
    "sc_callout": ("所抽查的叫应", "Call-out checked"),
    "sc_opened": ("开始", "Opened"),
    "sc_sampled": ("抽查人数", "Sampled"),
    "sc_answered": ("已回答", "Answered"),
    "sc_open_followups": ("待整改", "Open follow-ups"),
    "sc_questions": ("六问", "The six questions"),
    "sc_answers": ("回答", "Answers"),
    "sc_person": ("被抽查人", "Person"),
    "sc_no": ("否", "No"),
    "sc_yes": ("是", "Yes"),
    "sc_no_answers": ("回答为“否”", "Answered no"),
    "sc_followups": ("整改跟进", "Follow-ups"),
    "sc_town": ("乡镇(街道)", "Town"),
    "sc_responsible": ("整改责任人", "Responsible"),
    "sc_due": ("整改时限", "Due"),
    "sc_failed": ("未落实事项", "Not in place"),
    "sc_resolution": ("整改情况", "What was done"),
    "sc_resolve": ("登记整改完成", "Record as resolved"),
    "sc_st_waiting": ("等待开始", "waiting"), "sc_st_running": ("进行中", "running"), "sc_st_closed": ("已结束", "closed"), "sc_st_skipped": ("未抽查", "skipped"),
    "sc_ps_pending": ("待呼叫", "pending"), "sc_ps_called": ("已呼叫", "called"), "sc_ps_answered": ("已回答", "answered"),
    "sc_ps_answered_late": ("逾期回答", "answered late"), "sc_ps_unreachable": ("未联系上", "unreachable"),
    "sc_fs_open": ("待整改", "open"), "sc_fs_acknowledged": ("已签收", "acknowledged"),
    "sc_fs_resolved": ("已整改", "resolved"), "sc_fs_unresolved": ("未整改", "unresolved"),
    "sc_overdue": ("已逾期", "overdue"),
    "duty_pages": ("值守工作", "The duty day"),
})


SKIPPED_ZH = (("no call-out", "无此叫应"), ("a drill", "演练不做六问抽查"), ("level ", "预警级别未达抽查级别"),
              ("nobody in", "抽查岗位无人确认收到叫应"))


def reason_zh(reason: str) -> str:
    """Why a check was skipped (activities/duty/spotcheck.py says it in English), in Chinese."""
    return next((zh for start, zh in SKIPPED_ZH if reason.startswith(start)), reason)


@router.get("", response_class=HTMLResponse)
async def spotchecks(request: Request, user: auth.Viewer) -> HTMLResponse:
    rows = await asyncio.to_thread(svc.spotcheck_list, 100)
    for r in rows:
        r["reason_zh"] = reason_zh(r.get("reason") or "")
    schedules, sched_error = await schedules_of(request, "spotcheck")
    return render(request, "spotchecks.html", rows=rows, schedules=schedules, sched_error=sched_error,
                  may_control=user.may(*roles.CHIEFS), is_admin=user.role == "admin", now=datetime.now(UTC))


def _detail(check_id: str) -> dict | None:
    found = svc.spotcheck_detail(check_id)
    if found is None:
        return None
    with session_scope(write=False) as s:
        who = names(s, {x for f in found["followups"] for x in (f.get("resolved_by") or "", f.get("acknowledged_by") or "")})
    for f in found["followups"]:
        f["resolved_by_name"] = who.get(f.get("resolved_by") or "", f.get("resolved_by") or "")
    found["no_answers"] = [p for p in found["persons"] if p.get("answers") and not all(p["answers"].values())]
    return found


async def _page(request: Request, check_id: str, status: int = 200, error: str | None = None) -> HTMLResponse:
    found = await asyncio.to_thread(_detail, check_id)
    if found is None:
        return render(request, "message.html", status=404, kind="error", message=f"无此六问抽查 {check_id!r} / no spot check")
    return render(request, "spotcheck.html", status=status, c=found, error=error, now=datetime.now(UTC))


@router.get("/{check_id}", response_class=HTMLResponse)
async def spotcheck(request: Request, check_id: str, user: auth.Viewer) -> HTMLResponse:
    return await _page(request, check_id)


@router.post("/{check_id}/resolve", response_model=None)
async def resolve(request: Request, check_id: str, user: auth.Poster, key: Annotated[str, Form(max_length=300)] = "",
                  note: Annotated[str, Form(max_length=2000)] = "") -> Response:
    """A follow-up resolved: what the town did (the workflow decides who may)."""
    try:
        req = ResolveIn(actor=user.caller.actor, role=user.role, key=key, note=note.strip())
        await svc.spotcheck_resolve(await get_temporal(request), check_id, req)
    except ValidationError as exc:
        return await _page(request, check_id, 422, f"请填写整改情况 / {form_error(exc)}")
    except svc.DutyError as exc:
        return await _page(request, check_id, exc.status, str(exc))
    return RedirectResponse(f"/console/spotchecks/{check_id}", status_code=303)
