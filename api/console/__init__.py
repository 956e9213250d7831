"""The web console for duty officers and supervisors (server-rendered, htmx, server-sent events)."""
from __future__ import annotations

from pathlib import Path

from fastapi import Depends, FastAPI
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles

API = Path(__file__).resolve().parents[1]


def install(app: FastAPI) -> None:
    """Mount the console's pages and the static files (vendored htmx included; nothing from a CDN)."""
    from api.console import pages, roles
    from api.console.activations import router as activations
    from api.console.bulletins import router as bulletins
    from api.console.contacts import router as contacts
    from api.console.documents import router as documents
    from api.console.duty import router as duty_router
    from api.console.incidents import router as incidents
    from api.console.proposals import router as proposals
    from api.console.resources import router as resources
    from api.console.reviews import router as reviews
    from api.console.roster import router as roster
    from api.console.scorecards import router as scorecards
    from api.console.spotchecks import router as spotchecks
    from api.console.workorders import router as workorders
    from api.console.routes import router
    from api.services import names

    # every page shows people and units by name (api/services/names.py): the table is read again when stale
    fresh = [Depends(names.refresh_if_stale)]
    app.add_exception_handler(roles.Refused, pages.refused)
    app.include_router(router, dependencies=fresh)
    # the address `make run` prints is the site's root: it leads to the console (which asks for a login)
    app.add_api_route("/", lambda: RedirectResponse("/console", status_code=303), include_in_schema=False)
    for pages_router in (documents, incidents, activations, proposals, duty_router, roster, spotchecks, contacts, reviews,
                         workorders, scorecards, bulletins, resources):
        app.include_router(pages_router, dependencies=fresh)
    app.mount("/static", StaticFiles(directory=API / "static"), name="static")
    app.mount("/console/static", StaticFiles(directory=Path(__file__).parent / "static"), name="console-static")
