"""Contact confirmation 通讯录确认 in the console: the confirmation rounds (who confirmed, who did not, how
many reminders, which numbers bounced), the contacts not confirmed within the settings' time (the stale list)
or failing, and the yearly round's schedule under its own heading.

The same services and the same door as `/api/freshness` (admin): the lists name every person's contact state."""
from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse

from api.console import auth, roles
from api.console.i18n import STRINGS
from api.console.pages import library, render, schedules_of
from api.services import duty as svc

router = APIRouter(prefix="/console/contacts", tags=["console"], include_in_schema=False)
Admin = Annotated[auth.ConsoleUser, Depends(roles.Role())]  # admin only, as GET /api/freshness/…
LIST_LIMIT = 300
STATES = ("pending", "asked", "confirmed", "unconfirmed", "bounced")

STRINGS.update({
    "contact_rounds": ("通讯录确认", "Contact confirmation"),
    "cr_rounds": ("确认轮次", "Confirmation rounds"),
    "cr_round": ("确认轮次", "Confirmation round"),
    "cr_year": ("年度", "Year"),
    "cr_name": ("姓名", "Name"),
    "cr_started": ("开始", "Started"),
    "cr_deadline": ("截止", "Deadline"),
    "cr_total": ("人数", "Persons"),
    "cr_confirmed": ("已确认", "Confirmed"),
    "cr_unconfirmed": ("未确认", "Not confirmed"),
    "cr_bounced": ("号码失效", "Bounced"),
    "cr_reminders": ("提醒次数", "Reminders"),
    "cr_confirmed_at": ("确认时间", "Confirmed at"),
    "cr_stale": ("逾期未核实的联系方式", "Contacts not confirmed in time"),
    "cr_failing": ("近期发送失败的号码", "Numbers failing lately"),
    "cr_last_confirmed": ("上次确认", "Last confirmed"),
    "cr_never": ("从未确认", "never"),
    "cr_more": ("另有 {n} 人未列出", "{n} more not listed"),
    "cr_all": ("全部", "all"),
    "cr_st_running": ("进行中", "running"), "cr_st_closed": ("已结束", "closed"),
    "cr_ps_pending": ("待发送", "pending"), "cr_ps_asked": ("已发送待确认", "asked"),
    "cr_ps_confirmed": ("已确认", "confirmed"), "cr_ps_unconfirmed": ("未确认", "not confirmed"),
    "cr_ps_bounced": ("号码失效", "bounced"),
})


def _lists() -> dict:
    lib = library()
    stale, failing = svc.contact_list(lib, "stale"), svc.contact_list(lib, "failing")
    return {"rounds": svc.rounds(), "stale": stale[:LIST_LIMIT], "stale_total": len(stale),
            "failing": failing[:LIST_LIMIT], "failing_total": len(failing)}


@router.get("", response_class=HTMLResponse)
async def contacts(request: Request, user: Admin) -> HTMLResponse:
    data = await asyncio.to_thread(_lists)
    schedules, sched_error = await schedules_of(request, "freshness")
    return render(request, "contacts.html", schedules=schedules, sched_error=sched_error, may_control=True,
                  is_admin=True, now=datetime.now(UTC), **data)


@router.get("/rounds/{round_id}", response_class=HTMLResponse)
async def round_page(request: Request, round_id: str, user: Admin, state: str | None = None) -> HTMLResponse:
    if state is not None and state not in STATES:
        return render(request, "message.html", status=422, kind="error",
                      message=f"筛选条件应为 {'、'.join(STATES)} 之一 / state: one of {', '.join(STATES)}")
    found = await asyncio.to_thread(svc.round_detail, round_id, state, 2000)
    if found is None:
        return render(request, "message.html", status=404, kind="error", message=f"无此确认轮次 {round_id!r} / no round")
    return render(request, "contact_round.html", r=found, state=state, filters=STATES, now=datetime.now(UTC))
