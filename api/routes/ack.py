"""The page behind a signed acknowledgement link: one big confirm button, readable on a phone."""
from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from api.deps import SessionDep, SettingsDep
from api.services.answers import AnswerError, acknowledge
from store.callouts import Callout
from store.directory import Person
from store.links import LinkError, consume, read_ack_token

router = APIRouter(tags=["acknowledgement"])
templates = Jinja2Templates(directory=Path(__file__).resolve().parents[1] / "templates")
STATUS = {"expired": 410, "used": 409, "invalid": 403}


def _page(request: Request, status: int = 200, **ctx) -> HTMLResponse:
    return templates.TemplateResponse(request, "ack.html", ctx, status_code=status)


@router.get("/ack/{token}", response_class=HTMLResponse, summary="Acknowledgement page (signed link)")
def ack_page(token: str, request: Request, session: SessionDep, settings: SettingsDep) -> HTMLResponse:
    try:
        data = read_ack_token(settings.signing_key(), token)
    except LinkError as exc:
        return _page(request, STATUS[exc.reason], state="error", message=str(exc))
    person = session.get(Person, data["p"])
    callout = session.get(Callout, data["s"])
    title = f"【叫应】{callout.title}" if callout else "确认收到"
    return _page(request, state="form", title=title, person_name=person.name if person else "")


@router.post("/ack/{token}", response_class=HTMLResponse, summary="Confirm through a signed link (works once)")
async def ack_confirm(token: str, request: Request, session: SessionDep, settings: SettingsDep) -> HTMLResponse:
    try:
        data = read_ack_token(settings.signing_key(), token)
        consume(session, data)
    except LinkError as exc:
        return _page(request, STATUS[exc.reason], state="error", message=str(exc))
    client = await request.app.state.temporal()
    if client is None:
        session.rollback()  # the link stays usable
        return _page(request, 503, state="error", message="系统繁忙,请稍后重试 / Please try again shortly")
    try:
        await acknowledge(client, session, data["s"], data["p"], "link", ref=f"link:{data['j']}")
    except AnswerError as exc:
        return _page(request, 404, state="error", message=str(exc))
    return _page(request, state="done")
