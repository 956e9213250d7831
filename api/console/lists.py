"""The message log (every message sent, for the duty office and supervisors) and the search box's results
page: the filters are read here, the queries are api.services.messagelog and api.services.search."""
from __future__ import annotations

from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from api.console import auth, roles
from api.console.i18n import MESSAGE_STATUS_NAMES
from api.console.i18n_lists import MESSAGE_CHANNELS, message_reason, message_status, subject_kind
from api.console.pages import db, render
from api.services import messagelog, search as finder
from api.services.errors import ServiceError

router = APIRouter(prefix="/console", tags=["console"], include_in_schema=False)


def _page_no(request: Request) -> int:
    raw = str(request.query_params.get("page") or "1")
    return int(raw) if raw.isdigit() and len(raw) < 7 else 1


@router.get("/messages", response_class=HTMLResponse)
async def message_log(request: Request, user: roles.LogReader) -> HTMLResponse:
    error, data, shown = None, None, {}
    try:
        f, shown = messagelog.filter_from(request.query_params)
        data = await db(messagelog.message_log, f, _page_no(request))
    except ServiceError as exc:
        error = str(exc)
        shown = {k: str(request.query_params.get(k) or "")[:200] for k in messagelog.FILTERS}
    query = urlencode({k: v for k, v in shown.items() if v})
    return render(request, "messages.html", status=422 if error else 200, error=error, data=data, f=shown,
                  rows=(data or {}).get("rows", []), query=query, status_label=message_status,
                  reason_label=message_reason, kind_label=subject_kind, status_names={k: v for k, v in MESSAGE_STATUS_NAMES.items() if k in messagelog.STATUSES},
                  channel_names=MESSAGE_CHANNELS)


@router.get("/search", response_class=HTMLResponse)
async def search(request: Request, user: auth.Viewer, q: str = "") -> HTMLResponse:
    try:
        found = await db(finder.search, q[:200])
    except finder.SearchError as exc:
        return render(request, "search.html", status=exc.status, error=str(exc), q=q[:200], found=None)
    return render(request, "search.html", q=found["q"], found=found, error=None)
