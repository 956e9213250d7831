"""`POST /api/warnings`: a warning as JSON or as a CAP 1.2 XML document."""
from __future__ import annotations

import json
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from sqlmodel import col, select

from api.cap import MAX_CAP_BYTES, CapError
from api.routes import ErrorOut
from api.deps import Anyone, DutyOfficer, Offset, ReadSessionDep, SettingsDep, limit_param
from api.services.warnings import IntakeResult, WarningIn, from_cap, from_json, intake
from definitions.loader import cached_library
from store.warnings import Warning

router = APIRouter(prefix="/api/warnings", tags=["warnings"])
XML_TYPES = ("application/cap+xml", "application/xml", "text/xml")


async def read_body(request: Request, limit: int) -> bytes:
    size = request.headers.get("content-length")
    if size and size.isdigit() and int(size) > limit:
        raise HTTPException(413, detail=f"request body larger than {limit} bytes")
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise HTTPException(413, detail=f"request body larger than {limit} bytes")
    return body


@router.post("", status_code=201, response_model=IntakeResult, summary="Receive a warning (JSON or CAP 1.2 XML)",
             responses={200: {"model": IntakeResult, "description": "Sent before (same sender and identifier): nothing new"},
                        409: {"model": ErrorOut, "description": (
                            "The warning has expired (its `expires` passed; the message names sent and expires): "
                            "nothing stored, nobody called. Send `accept_stale: true` (JSON) or `?accept_stale=true` "
                            "(CAP XML) to take it anyway")}},
             openapi_extra={"requestBody": {"content": {
                 "application/json": {"schema": WarningIn.model_json_schema()},
                 "application/cap+xml": {"schema": {"type": "string"}}}, "required": True}})
async def receive_warning(request: Request, settings: SettingsDep, caller: DutyOfficer,
                          accept_stale: Annotated[bool, Query(description=(
                              "take an expired warning anyway (for CAP XML; JSON may say accept_stale: true)"))] = False):
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    body = await read_body(request, MAX_CAP_BYTES if ctype in XML_TYPES else settings.max_body_bytes)
    try:
        if ctype in XML_TYPES:
            warning = from_cap(body)
        elif ctype in ("application/json", ""):
            try:
                data = json.loads(body or b"null")
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                raise HTTPException(400, detail=f"body is not valid JSON: {exc}") from exc
            if not isinstance(data, dict):
                raise HTTPException(422, detail="body: expected a JSON object describing the warning")
            try:
                parsed = WarningIn.model_validate(data)
                accept_stale = accept_stale or parsed.accept_stale
                warning = from_json(parsed)
            except ValidationError as exc:
                err = exc.errors()[0]
                where = ".".join(str(p) for p in err["loc"]) or "body"
                raise HTTPException(422, detail=f"{where}: {err['msg']}") from exc
        else:
            raise HTTPException(415, detail=f"content type {ctype!r} is not accepted: send application/json or application/cap+xml")
        lib = cached_library(settings.definitions_dir)
        client = await request.app.state.temporal()
        result = await intake(client, settings, lib, warning, source="api", actor=caller.actor,
                              accept_stale=accept_stale)
    except CapError as exc:
        raise HTTPException(422, detail=f"CAP document refused ({exc.reason}): {exc}") from exc
    return JSONResponse(status_code=200 if result.duplicate else 201, content=result.model_dump())


@router.get("", summary="Warnings received, newest first")
def list_warnings(session: ReadSessionDep, _: Anyone, limit: Annotated[int, limit_param(1000)] = 100,
                  offset: Offset = 0) -> list[dict]:
    limit = max(1, min(limit, 1000))
    rows = session.exec(select(Warning).order_by(col(Warning.received_at).desc()).offset(max(offset, 0)).limit(limit))
    return [r.model_dump(exclude={"raw"}, mode="json") for r in rows]


@router.get("/{warning_id}", summary="One warning")
def get_warning(warning_id: str, session: ReadSessionDep, _: Anyone) -> dict:
    row = session.get(Warning, warning_id)
    if row is None:
        raise HTTPException(404, detail=f"no warning {warning_id!r}")
    return row.model_dump(mode="json")
