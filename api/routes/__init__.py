"""Routes per resource; each module has a `router`."""
from __future__ import annotations

from fastapi import FastAPI


def include_all(app: FastAPI) -> None:
    from api.routes import (ack, activations, audit, callouts, directory, duty, health, incidents, messages, replay,
                            reviews, warnings, webhooks)

    # replay before audit: "/api/audit/{subject:path}/replay" must be tried before "/api/audit/{subject:path}"
    for module in (health, warnings, callouts, incidents, activations, reviews, messages, ack, replay, audit, directory,
                   webhooks, duty):
        app.include_router(module.router)
