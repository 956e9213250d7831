"""The simulator's pages: "my phone" (the messages sent to the logged-in person, whole) and the
controls that play a recipient's answer to a message on a call-out board."""
from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse
from pydantic import ValidationError

from api.console import auth, roles
from api.console.board import detail
from api.console.pages import db, form_error, render, t_of
from api.deps import MAX_INT, RowId, get_temporal
from api.services import messages, phone
from config import get_settings

router = APIRouter(prefix="/console", tags=["console"], include_in_schema=False)


@router.get("/phone", response_class=HTMLResponse)
async def my_phone(request: Request, user: auth.Viewer) -> HTMLResponse:
    """With the simulator, the messages sent to the logged-in person, whole (links that work):
    the demo's stand-in for that person's own phone. Nobody else sees them whole; with a real
    gateway they are on the real phone."""
    settings = get_settings()
    if settings.gateway != "simulator" or settings.sms_gateway != "simulator":
        return render(request, "message.html", status=404, kind="info", message=t_of(request)("phone_real"))
    if user.person_id is None:
        return render(request, "message.html", status=404, kind="info", message=t_of(request)("phone_nobody"))
    messages = await db(phone.my_messages, user.person_id)
    return render(request, "phone.html", messages=messages)


@router.post("/simulator/{message_id}", response_class=HTMLResponse)
async def simulate(request: Request, message_id: RowId, user: roles.DutyUser, outcome: Annotated[str, Form()],
                   callout_id: Annotated[str, Form()], target_id: Annotated[int, Form(ge=0, le=MAX_INT)],
                   digits: Annotated[str | None, Form()] = None) -> HTMLResponse:
    """The simulator's controls: the same service as `POST /api/simulator/messages/{id}`."""
    error = None
    try:
        body = messages.SimulatedOutcome(outcome=outcome, digits=digits)  # type: ignore[arg-type]
        await messages.simulate(await get_temporal(request), get_settings(), message_id, body)
    except ValidationError as exc:
        error = form_error(exc)
    except messages.SimulatorError as exc:
        error = str(exc)
    return await detail(request, callout_id, target_id, error=error, played=None if error else (
        f"key{digits or 1}" if outcome == "keypress" else outcome))
