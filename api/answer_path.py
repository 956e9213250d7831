"""The SMS reply webhook served straight from inside `SecurityMiddleware`, before FastAPI's routing.

A reply to a call-out (`POST /api/webhooks/twilio/sms`) is the request a district gets most of at the worst moment:
tens of thousands within minutes of a red warning. FastAPI's own steps for each request (matching the route among
the routers, its request/response wrappers, solving the route's dependencies) stood between every reply and its
handler; served here, one process took 1,000 replies/s with a request p99 of 1.3–2.3 s instead of 2.9–3.9 s, at
0.71–0.76 ms of CPU per reply instead of 0.77 (docs/performance.md "Load"). The route's own two functions
(`webhooks.verified_twilio`, then `webhooks.inbound_sms`) are called directly: same signature check, same intake,
same answer. Everything around stays: `SecurityMiddleware` is outside (body limit, security headers), and a refusal
is answered by the app's own exception handlers (api/app.py), looked up as Starlette does (the status code's handler
first, then the exception's class and its bases). The FastAPI route stays registered for the OpenAPI document, the
access table and every other method (a GET still gets FastAPI's 405).
"""
from __future__ import annotations

from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request

from api.routes.webhooks import TWILIO, inbound_sms, verified_twilio
from api.security import ASGIApp, Receive, Scope, Send
from config import get_settings

SMS_REPLY = f"{TWILIO}/sms"


class AnswerPath:
    """ASGI middleware: `POST /api/webhooks/twilio/sms` is served here; every other request goes on to FastAPI."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] != SMS_REPLY:
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive)
        try:
            response = await inbound_sms(request, await verified_twilio(request, get_settings()))
        except Exception as exc:  # noqa: BLE001 - answered by the app's handler for it, else raised as before
            handler = _handler(scope["app"].exception_handlers, exc)
            if handler is None:
                raise
            response = await handler(request, exc)
        await response(scope, receive, send)


def _handler(handlers: dict[Any, Any], exc: Exception):
    """The app's handler for `exc`, found as Starlette's ExceptionMiddleware finds it."""
    if isinstance(exc, HTTPException) and exc.status_code in handlers:
        return handlers[exc.status_code]
    return next((handlers[cls] for cls in type(exc).__mro__ if cls in handlers), None)
