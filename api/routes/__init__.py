"""Routes per resource; each module has a `router`."""
from __future__ import annotations

from fastapi import FastAPI


def include_all(app: FastAPI) -> None:
    from api.routes import ack, audit, callouts, directory, duty, health, incidents, messages, replay, warnings, webhooks

    for module in (health, warnings, callouts, incidents, messages, ack, audit, replay, directory, webhooks, duty):
        app.include_router(module.router)
