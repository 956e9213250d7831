"""Routes per resource; each module has a `router`."""
from __future__ import annotations

from fastapi import FastAPI


def include_all(app: FastAPI) -> None:
    from api.routes import (ack, activations, audit, callouts, directory, health, incidents, messages, replay, warnings,
                            webhooks)

    for module in (health, warnings, callouts, incidents, activations, messages, ack, audit, replay, directory, webhooks):
        app.include_router(module.router)
