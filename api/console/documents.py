"""The written reports as official documents 公文 for 报送: each version of a report of the chain, as PDF or
.docx, from the incident page (an approved version signed by its approver, any other a draft 草稿)."""
from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from api.console import auth
from api.console.i18n import STRINGS
from api.console.pages import library, render
from api.services import written as svc
from config import get_settings
from store.db import session_scope

router = APIRouter(prefix="/console/incidents", tags=["console"], include_in_schema=False)

STRINGS.update({
    "gw_document": ("公文", "Official document"),
    "gw_pdf": ("公文PDF", "Document PDF"),
    "gw_docx": ("公文Word", "Document .docx"),
    "gw_draft": ("草稿", "draft"),
})


def _document(incident_id: str, seq: int, version: int | None, fmt: str) -> tuple[bytes, str]:
    with session_scope(write=False) as s:
        doc, name = svc.official_document(s, library(), incident_id, seq, version, get_settings().timezone)
    return svc.render(doc, fmt), f"{name}.{fmt}"


@router.get("/{incident_id}/reports/{seq}/document.{fmt}", response_model=None)
async def document(request: Request, incident_id: str, seq: str, fmt: str, user: auth.Viewer,
                   version: str | None = None) -> Response | HTMLResponse:
    if fmt not in svc.FORMATS:
        return render(request, "message.html", status=404, kind="error",
                      message=f"无此格式 {fmt!r}(可选 pdf、docx)/ no format {fmt!r}")
    if not seq.isdigit() or not (version is None or version.isdigit()) or len(seq + (version or "")) > 6:
        return render(request, "message.html", status=422, kind="error",
                      message="报告序号和版本须为数字 / the report and version are numbers")
    try:
        body, filename = await asyncio.to_thread(_document, incident_id, int(seq), int(version) if version else None,
                                                 fmt)
    except svc.DocumentError as exc:
        return render(request, "message.html", status=exc.status, kind="error", message=str(exc))
    return Response(body, media_type=svc.FORMATS[fmt],
                    headers={"Content-Disposition": svc.disposition(filename), "Cache-Control": "no-store"})
