"""The duty desk (who is on duty, running call-outs, open incidents, responses and reviews, recent
warnings), and the reference pages: the directory and the definitions."""
from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from api.console import auth
from api.console.pages import db, library, render
from api.services import desk as svc
from api.services import directory as people
from api.services.activations import listing as activation_list
from api.services.incidents import incident_list
from api.services.reviews import open_reviews

router = APIRouter(prefix="/console", tags=["console"], include_in_schema=False)


@router.get("/desk", response_class=HTMLResponse)
async def desk(request: Request, user: auth.Viewer) -> HTMLResponse:
    lib = await asyncio.to_thread(library)
    data = await db(svc.desk, lib, datetime.now(UTC))
    incidents = await asyncio.to_thread(incident_list, 20, "open", None)
    responses = await asyncio.to_thread(activation_list, 20, "active", None)
    reviews = await db(open_reviews, datetime.now(UTC))
    return render(request, "desk.html", now=datetime.now(UTC), incidents=incidents, responses=responses,
                  reviews=reviews, **data)


@router.get("/directory", response_class=HTMLResponse)
async def directory(request: Request, user: auth.Viewer, unit: str | None = None) -> HTMLResponse:
    data = await db(people.directory, unit)
    return render(request, "directory.html", **data)


@router.get("/definitions", response_class=HTMLResponse)
async def definitions(request: Request, user: auth.Viewer) -> HTMLResponse:
    lib = await asyncio.to_thread(library)
    return render(request, "definitions.html", lib=lib, root=str(lib.root))
