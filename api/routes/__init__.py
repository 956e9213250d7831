"""Routes per resource; each module has a `router`.

Every router is included with the error answers it can give documented in the OpenAPI
schema as they really are: `{"detail": "what is wrong", "errors": [...]}` (FastAPI's default
422 schema, a list under `detail`, is not what `api.app` answers).
"""
from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel, Field


class ErrorItem(BaseModel):
    loc: list[str | int] = Field(default_factory=list)
    msg: str = ""


class ErrorOut(BaseModel):
    detail: str = Field(description="what is wrong, in words")
    errors: list[ErrorItem] | None = Field(default=None, description="every field that failed validation (422)")


WHY = {400: "Malformed request", 401: "No or unknown bearer token", 403: "Not allowed for this role, or a bad signature",
       404: "Not found", 409: "Conflicts with the current state", 410: "Expired", 413: "Request body too large",
       415: "Unsupported content type", 422: "Invalid input (which field and why)", 429: "Too many requests",
       503: "Temporal is not reachable; try again shortly"}


def errors(*codes: int, html: tuple[int, ...] = ()) -> dict[int | str, dict[str, Any]]:
    out: dict[int | str, dict[str, Any]] = {c: {"model": ErrorOut, "description": WHY[c]} for c in codes}
    for c in html:  # pages for people (acknowledgement links)
        out[c] = {"description": WHY[c], "content": {"text/html": {"schema": {"type": "string"}}}}
    return out


API_ERRORS = errors(400, 401, 403, 404, 409, 413, 415, 422, 429, 503)


def include_all(app: FastAPI) -> None:
    from api.routes import (ack, activations, audit, bulletins, callouts, directory, duty, health, incidents, messages,
                            proposals, publications, readiness, replay, resources, reviews, scorecards, supplies, warnings,
                            webhooks, webhooks_aliyun, webhooks_cityline, webhooks_hotline, workorders)

    app.include_router(health.router)
    # the answer paths first: a request is matched against the routers in order, and under a burst of answers
    # matching them behind every other router took 8-18 % of the API's CPU (bench/api_load.py --profile). Their
    # paths are exact (/ack/…, /a/…, /api/webhooks/…): no router below has one that could match them too.
    app.include_router(webhooks.router, responses=errors(403, 404, 413, 415, 422, 503))
    app.include_router(ack.router, responses=errors(html=(403, 404, 409, 410, 413, 429, 503)))
    app.include_router(webhooks_aliyun.router, responses=errors(403, 413, 422, 503))
    # replay before audit: "/api/audit/{subject:path}/replay" must be tried before "/api/audit/{subject:path}"
    for module in (warnings, callouts, publications, incidents, activations, supplies, proposals, reviews, workorders,
                   scorecards, bulletins, messages, replay, audit, directory, resources, readiness, duty):
        app.include_router(module.router, responses=API_ERRORS)
    app.include_router(webhooks_hotline.router, responses=errors(403, 404, 409, 413, 422))
    app.include_router(webhooks_cityline.router, responses=errors(403, 404, 413, 422))
