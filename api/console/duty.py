"""Console pages of the duty day: shift handovers (the note, hand over, take over) and drill results
(the schedules with pause/resume/run-now, each run's response rate within its window).

The pages act through the same service functions as the REST API (api/services/duty/).
"""
from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from api.console import auth, roles
from api.console.i18n import STRINGS
from api.console.pages import library, render, schedules_of
from api.deps import get_temporal
from api.services import duty as svc
from config import get_settings
from workflows.handover import HandOverIn, NoteIn, TakeOverIn

router = APIRouter(prefix="/console", tags=["console"], include_in_schema=False)
CHIEFS = roles.CHIEFS

STRINGS.update({
    "handovers": ("交接班", "Handovers"),
    "handover": ("交接班", "Handover"),
    "drills": ("演练", "Drills"),
    "drill_runs": ("演练记录", "Drill runs"),
    "temporal_away": ("暂时无法连接 Temporal,定时任务稍后再看。", "Temporal is not reachable; see the schedules later."),
    "drill_results": ("演练结果", "Drill results"),
    "shift_at": ("交接时间", "Shift change"),
    "outgoing": ("交班值班长", "Outgoing duty chief"),
    "incoming": ("接班值班长", "Incoming duty chief"),
    "leader": ("带班领导", "Leading leader"),
    "take_over_by": ("须于此前接班", "Take over by"),
    "handover_note": ("交班记录", "Handover note"),
    "open_items": ("未结事项(自动带出)", "Open items (filled in)"),
    "note_text": ("交班说明", "Written note"),
    "save_note": ("保存交班记录", "Save the note"),
    "hand_over": ("交班", "Hand over"),
    "take_over": ("确认接班", "Take over"),
    "open_handover": ("发起本次交接班", "Open the handover now"),
    "taken_over": ("已接班", "Taken over"),
    "handed_over": ("已交班待接班", "Handed over"),
    "not_taken_over": ("未接班", "Not taken over"),
    "skipped": ("无需交接", "No change"),
    "escalated_at": ("升级至带班领导", "Escalated to the leading leader"),
    "late_by": ("迟", "late by"),
    "schedules": ("定时任务", "Schedules"),
    "when": ("时间", "When"),
    "next_run": ("下次", "Next run"),
    "paused": ("已暂停", "Paused"),
    "active": ("运行中", "Active"),
    "not_installed": ("未安装", "Not installed"),
    "pause": ("暂停", "Pause"),
    "pause_reason": ("暂停原因(低于每周最低演练次数时必填)", "Why (required when it leaves the drills below the weekly minimum)"),
    "resume": ("恢复", "Resume"),
    "run_now": ("立即执行", "Run now"),
    "sync_schedules": ("按定义安装/更新", "Install / update from definitions"),
    "sample": ("抽取", "Sample"),
    "rate": ("应答率", "Response rate"),
    "responded": ("时限内应答", "Answered in time"),
    "window": ("时限", "Window"),
    "in_window": ("时限内", "in time"),
    "late_answer": ("超时应答", "late"),
    "no_answer": ("未应答", "no answer"),
    "real_stats": ("真实叫应统计(不含演练)", "Real call-outs (drills never counted)"),
    "drills_apart": ("演练(单独统计)", "Drills (counted apart)"),
    "contact_warnings": ("联系方式提醒", "Contact warnings"),
    "stale_contact": ("联系方式逾期未核实", "contact not confirmed for over a year"),
    "failing_contact": ("号码近期发送失败", "number failing"),
    "recent_drills": ("演练(不计入叫应统计)", "Drills (not counted as call-outs)"),
    "reported": ("已报告", "Reported"),
    "schedule_name": ("名称", "Name"),
    "item_warning": ("预警", "warning"), "item_callout": ("叫应", "call-out"), "item_incident": ("事件", "incident"),
    "item_deadline": ("报送时限", "deadline"), "item_activation": ("响应", "activation"),
    "item_followup": ("六问整改", "follow-up"), "item_drill": ("演练", "drill"), "item_other": ("其他", "other"),
})


async def _db(fn, *args):
    return await asyncio.to_thread(fn, *args)


# ------------------------------------------------------------------ handovers


@router.get("/handovers", response_class=HTMLResponse)
async def handovers(request: Request, user: auth.Viewer) -> HTMLResponse:
    rows = await _db(svc.handover_list, 50)
    schedules, sched_error = await schedules_of(request, "handover")
    return render(request, "handovers.html", rows=rows, now=datetime.now(UTC), schedules=schedules,
                  sched_error=sched_error, may_control=user.may(*CHIEFS), is_admin=user.role == "admin")


@router.post("/handovers")
async def open_handover(request: Request, user: roles.DutyUser) -> Response:
    try:
        view, _ = await svc.start_handover(await get_temporal(request), await asyncio.to_thread(library), get_settings(),
                                           None, user.caller.actor)
    except svc.DutyError as exc:
        return render(request, "message.html", status=exc.status, kind="error", message=str(exc))
    return RedirectResponse(f"/console/handovers/{view.handover_id}", status_code=303)


@router.get("/handovers/{handover_id}", response_class=HTMLResponse)
async def handover(request: Request, handover_id: str, user: auth.Viewer, error: str | None = None) -> HTMLResponse:
    found = await _db(svc.handover_detail, handover_id)
    if found is None:
        return render(request, "message.html", status=404, kind="error", message=f"no handover {handover_id!r}")
    me = user.caller.actor
    return render(request, "handover.html", h=found, error=error, now=datetime.now(UTC),
                  is_outgoing=me == found["outgoing_id"] or user.role == "admin",
                  may_take_over=me == found["incoming_id"] or user.role in ("leading_leader", "admin"),
                  open=found["status"] in ("open", "handed_over"))


async def _step(request: Request, handover_id: str, action: str, req) -> Response:
    try:
        await svc.handover_step(await get_temporal(request), handover_id, action, req)
    except svc.DutyError as exc:
        found = await _db(svc.handover_detail, handover_id)
        if found is None:
            return render(request, "message.html", status=exc.status, kind="error", message=str(exc))
        me = request.state.console_user.caller.actor
        user = request.state.console_user
        return render(request, "handover.html", status=exc.status, h=found, error=str(exc), now=datetime.now(UTC),
                      is_outgoing=me == found["outgoing_id"] or user.role == "admin",
                      may_take_over=me == found["incoming_id"] or user.role in ("leading_leader", "admin"),
                      open=found["status"] in ("open", "handed_over"))
    return RedirectResponse(f"/console/handovers/{handover_id}", status_code=303)


@router.post("/handovers/{handover_id}/note")
async def edit_note(request: Request, handover_id: str, user: roles.DutyUser,
                    text: Annotated[str, Form(max_length=10000)] = "") -> Response:
    return await _step(request, handover_id, "note", NoteIn(actor=user.caller.actor, role=user.role, text=text))


@router.post("/handovers/{handover_id}/hand-over")
async def hand_over(request: Request, handover_id: str, user: roles.DutyUser) -> Response:
    return await _step(request, handover_id, "hand_over", HandOverIn(actor=user.caller.actor, role=user.role))


@router.post("/handovers/{handover_id}/take-over")
async def take_over(request: Request, handover_id: str, user: roles.DutyUser) -> Response:
    return await _step(request, handover_id, "take_over", TakeOverIn(actor=user.caller.actor, role=user.role))


# ------------------------------------------------------------------ drills


@router.get("/drills", response_class=HTMLResponse)
async def drills(request: Request, user: auth.Viewer, error: str | None = None) -> HTMLResponse:
    runs = await _db(svc.drill_list, 100, None)
    figures = await _db(svc.callout_figures)
    real, drill_stats = figures["callouts"], figures["drills"]
    schedules, sched_error = await schedules_of(request, "drill")
    return render(request, "drills.html", runs=runs, real=real, drill_stats=drill_stats, schedules=schedules,
                  sched_error=sched_error, error=error, may_control=user.may(*CHIEFS), is_admin=user.role == "admin")


async def _controller(action: str, user: auth.Poster) -> auth.ConsoleUser:
    """Pausing, resuming and running a schedule: the duty chiefs; installing them from the definitions: admin."""
    if action not in ("pause", "unpause", "trigger", "sync"):
        raise roles.Refused(404, f"no action {action!r}")
    if action == "sync" and user.role != "admin" or action != "sync" and not user.may(*CHIEFS):
        raise roles.Refused()
    return user


BACK = ("/console/drills", "/console/handovers", "/console/spotchecks", "/console/contacts",
        "/console/resources/readiness")


@router.post("/schedules/{schedule_id}/{action}")
async def control(request: Request, schedule_id: str, action: str, user: Annotated[auth.ConsoleUser, Depends(_controller)],
                  note: Annotated[str, Form(max_length=500)] = "",
                  reason: Annotated[str, Form(max_length=500)] = "",
                  back: Annotated[str, Form(max_length=100)] = "/console/drills") -> Response:
    try:
        client, lib = await get_temporal(request), await asyncio.to_thread(library)
        if action == "sync":
            await svc.sync_schedules(client, lib, get_settings(), user.caller.actor)
        else:
            await svc.control_schedule(client, lib, get_settings(), schedule_id, action, note, user.caller.actor,
                                       reason=reason)
    except svc.DutyError as exc:
        return render(request, "message.html", status=exc.status, kind="error", message=str(exc))
    return RedirectResponse(back if back in BACK else "/console/drills", status_code=303)


@router.get("/drills/{run_id}", response_class=HTMLResponse)
async def drill(request: Request, run_id: str, user: auth.Viewer) -> HTMLResponse:
    found = await _db(svc.drill_detail, run_id)
    if found is None:
        return render(request, "message.html", status=404, kind="error", message=f"no drill run {run_id!r}")
    return render(request, "drill.html", r=found)
