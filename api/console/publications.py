"""The page of one publication below orange (精准发布): per-tier counts, the delivery rate (delivered / sent),
who was not reached by name, every message (api.services.publications, as `GET /api/publications/{id}`)."""
from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from api.console import auth
from api.console.pages import db, render
from api.services import publications as svc

router = APIRouter(prefix="/console", tags=["console"], include_in_schema=False)


@router.get("/publications/{publication_id}", response_class=HTMLResponse)
async def publication(request: Request, publication_id: str, user: auth.Viewer) -> HTMLResponse:
    try:
        p = await db(svc.publication_detail, publication_id)
    except svc.PublicationError:
        return render(request, "message.html", status=404, kind="error",
                      message=f"无此预警发布 / no publication {publication_id!r}")
    return render(request, "publication.html", p=p)
