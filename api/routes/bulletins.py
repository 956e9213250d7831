"""`/api/bulletins`: the monthly bulletin 通报 (api/services/bulletins.py): compiled by a schedule on the first working
day (or started here for a month), approved or returned by the leading leader, then sealed and sent to the units."""
from __future__ import annotations

import asyncio
from typing import Annotated, Literal

from fastapi import APIRouter, Depends
from fastapi.responses import Response
from pydantic import BaseModel, Field

from api.deps import DUTY, Anyone, Caller, ReadSessionDep, SettingsDep, TemporalDep, require
from api.services import bulletins as svc
from store.db import session_scope

router = APIRouter(prefix="/api/bulletins", tags=["bulletins"])

Reader = Annotated[Caller, Depends(require("supervisor", *DUTY))]
Chief = Annotated[Caller, Depends(require("duty_chief", "leading_leader"))]


class StartBody(BaseModel):
    month: str | None = Field(default=None, max_length=7, description="YYYY-MM; default: the last month")


class ReturnBody(BaseModel):
    reason: str = Field(default="", max_length=2000, description="what to change")


@router.post("", status_code=202, summary="Compile a month's bulletin now (the schedule does so on the first working day)")
async def start(client: TemporalDep, settings: SettingsDep, caller: Chief, body: StartBody | None = None) -> dict:
    return await svc.start(client, settings, (body or StartBody()).month, caller.actor)


@router.get("", summary="Bulletins, newest month first")
def list_bulletins(session: ReadSessionDep, _: Reader) -> list[dict]:
    return svc.listing(session)


@router.get("/{bulletin_id}", summary="One bulletin: status, hashes, the content (ranking, units below thresholds, "
                                      "late and missing reports, unanswered call-outs, drill weeks)")
def get_bulletin(bulletin_id: str, session: ReadSessionDep, _: Reader,
                 kind: Literal["town", "department"] | None = None, below: bool = False) -> dict:
    return svc.one(session, bulletin_id, kind, below)


@router.post("/{bulletin_id}/approve", summary="The leading leader approves the bulletin: it is sealed and sent")
async def approve(bulletin_id: str, client: TemporalDep, caller: Anyone) -> dict:
    view = await svc.decide(client, bulletin_id, "approve", caller.actor, caller.role)
    return view.model_dump(mode="json")


@router.post("/{bulletin_id}/return", summary="The leading leader returns the bulletin with a reason: compiled again")
async def return_(bulletin_id: str, client: TemporalDep, caller: Anyone, body: ReturnBody | None = None) -> dict:
    view = await svc.decide(client, bulletin_id, "return", caller.actor, caller.role, (body or ReturnBody()).reason)
    return view.model_dump(mode="json")


@router.get("/{bulletin_id}/pdf", summary="The bulletin as PDF (the sealed one once approved)")
async def bulletin_pdf(bulletin_id: str, _: Reader) -> Response:
    def read():
        with session_scope(write=False) as s:
            data, row = svc.pdf(s, bulletin_id)
            return data, row.version, row.status, row.seal_sha256

    data, version, status, seal = await asyncio.to_thread(read)
    headers = {"Content-Disposition": f'inline; filename="bulletin-{bulletin_id}-v{version}.pdf"',
               "X-Bulletin-Version": str(version), "X-Bulletin-Status": status}
    if seal:
        headers["X-Bulletin-Seal"] = seal
    return Response(data, media_type="application/pdf", headers=headers)
