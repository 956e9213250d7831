"""The page behind a signed acknowledgement link: one big confirm button, readable on a phone; the short alias
`/a/{code}` of a signed link (acknowledgement, contact confirmation, 六问 form) that texts carry leads to it."""
from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates

from api.deps import ReadSessionDep, SettingsDep
from store.group import GroupCommit
from api.services.answers.intake import IntakeRefused
from sqlmodel import select

from store.callouts import Callout, CalloutRelay
from store.directory import OrgUnit, Person
from store.db import session_scope
from store.links import LinkError, is_used, read_ack_token, resolve_short, used_among
from workflows.drill import DRILL_MARK, unmarked

router = APIRouter(tags=["acknowledgement"])
templates = Jinja2Templates(directory=Path(__file__).resolve().parents[1] / "templates")
STATUS = {"expired": 410, "used": 409, "invalid": 403}


def _page(request: Request, status: int = 200, **ctx) -> HTMLResponse:
    return templates.TemplateResponse(request, "ack.html", ctx, status_code=status)


@router.get("/a/{token}", response_class=HTMLResponse, summary="Short alias of a signed link (in texts): 303 to it")
def short_link(token: str, request: Request, session: ReadSessionDep, settings: SettingsDep):
    target = resolve_short(session, settings.signing_key(), token)
    if target is None:
        return _page(request, 403, state="error", message="确认链接无效 / this link is not valid")
    return RedirectResponse(target, status_code=303)


@router.get("/ack/{token}", response_class=HTMLResponse, summary="Acknowledgement page (signed link)")
def ack_page(token: str, request: Request, session: ReadSessionDep, settings: SettingsDep) -> HTMLResponse:
    try:
        data = read_ack_token(settings.signing_key(), token)
        if is_used(session, data):  # say so now rather than after the person presses confirm
            raise LinkError("used", "确认链接已使用过 / this link has been used already")
    except LinkError as exc:
        return _page(request, STATUS[exc.reason], state="error", message=str(exc))
    person = session.get(Person, data["p"])
    callout = session.get(Callout, data["s"])
    if (village := _relay_village(session, data)) is not None:  # 到户: the number of households, then confirm
        relay_title = "" if callout is None else (f"{DRILL_MARK}{unmarked(callout.title)}" if callout.drill else callout.title)
        return _page(request, state="relay", title=f"【到户】{relay_title}",
                     person_name=person.name if person else "", village=village)
    title = ("确认收到" if callout is None else f"{DRILL_MARK}【叫应】{unmarked(callout.title)}" if callout.drill
             else f"【叫应】{callout.title}")  # a drill's title may carry the old [演练] marker
    return _page(request, state="form", title=title, person_name=person.name if person else "")


def _relay_village(session, data: dict) -> str | None:
    """The village whose relay (到户到人, workflows/relay.py) was asked of the link's person in its call-out."""
    relay = session.exec(select(CalloutRelay).where(CalloutRelay.callout_id == data["s"],
                                                    CalloutRelay.person_id == data["p"])).first()
    if relay is None:
        return None
    unit = session.get(OrgUnit, relay.org_unit_id)
    return unit.name if unit else relay.org_unit_id


def _relay_asked(data: dict) -> bool:
    with session_scope(write=False) as s:
        return _relay_village(s, data) is not None


def _used(links: list[dict]) -> list[bool]:
    with session_scope(write=False) as s:
        return used_among(s, links)


_used_check = GroupCommit(_used)  # the confirmations that arrive together checked in one query


@router.post("/ack/{token}", response_class=HTMLResponse, summary="Confirm through a signed link (works once)")
async def ack_confirm(token: str, request: Request, settings: SettingsDep,
                      households: Annotated[str | None, Form(max_length=12)] = None) -> HTMLResponse:
    try:
        data = read_ack_token(settings.signing_key(), token)
        if await _used_check.submit(data):
            raise LinkError("used", "确认链接已使用过 / this link has been used already")
    except LinkError as exc:
        return _page(request, STATUS[exc.reason], state="error", message=str(exc))
    n = None
    if households not in (None, ""):  # 到户: the relay's form (the link stays usable when the figure is bad)
        if not households.strip().isdigit() or not 0 <= int(households) <= 100000 \
                or not await asyncio.to_thread(_relay_asked, data):
            return _page(request, 422, state="error", message="户数无效,请填写0到100000之间的整数,返回重填")
        n = int(households)
    # stored first, then answered and the link spent (api/services/answers/intake.py): the page says what
    # happened — taken by the call still running, recorded late, or stored and being recorded (never "done"
    # unrecorded); a 503 only when nothing was stored (the link stays usable)
    try:
        outcome = await request.app.state.intake.answer("link", {**data, "households": n})
    except IntakeRefused:
        return _page(request, 503, state="error", message="系统繁忙,请稍后重试 / Please try again shortly")
    if outcome is None:
        return _page(request, state="stored")
    if "error" in outcome:
        return _page(request, STATUS.get(outcome["error"], 404), state="error", message=outcome["message"])
    if n is not None:
        return _page(request, state="relayed", recorded=outcome["recorded"], households=n)
    return _page(request, state={"taken": "done"}.get(outcome["recorded"], outcome["recorded"]))
