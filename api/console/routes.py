"""The web console: server-rendered pages (Jinja2 + htmx), live call-out boards by server-sent events.

Every page needs a console session (`auth.py`); every POST checks the session's CSRF token. Actions
go through the same service functions as the REST API. The pages are cut by concept, one module
each; this router mounts them in the order their paths need (`/callouts/new` before
`/callouts/{callout_id}`). The pages of each procedure have their own routers (`__init__.py`).
"""
from __future__ import annotations

from fastapi import APIRouter

from api.console import board, callouts, desk, exports, lists, login, publications, replay, simulator, users

router = APIRouter()
for _module in (login, simulator, desk, callouts, board, publications, replay, lists, exports, users):
    router.include_router(_module.router)
