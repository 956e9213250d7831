"""Post-event reviews 复盘: start by hand, the units' summaries, compile, sign-off; the report and the case file.

Every step is an update of `PostEventReviewWorkflow`: its validators refuse a step by the wrong role
(403) or out of order (409), and say why. A terminated activation starts its review by itself.
"""
from __future__ import annotations

import asyncio
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Query, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from api.deps import MAX_INT, Anyone, DateFrom, DateTo, DutyOfficer, SettingsDep, Supervisor, TemporalDep
from api.services.dates import local_range
from api.services import reviews as svc
from definitions.loader import cached_library
from workflows.review import CompileIn, ReviewView, SignoffIn, SummaryContent, SummaryIn

router = APIRouter(prefix="/api/reviews", tags=["reviews"])


class ReviewOpened(ReviewView):
    duplicate: bool = Field(description="started before (same incident): as it stands, answered with 200")
STATUSES = ("collecting", "compiled", "returned", "signed", "sealed")


async def _step(client, incident_id: str, action: str, req) -> dict:
    view = await svc.step(client, incident_id, action, req)
    return view.model_dump(mode="json")


@router.post("", status_code=201, response_model=ReviewOpened, summary="Start the post-event review of an incident (by hand)",
             responses={200: {"model": ReviewOpened,
                              "description": "Started before (same incident): as it stands, with duplicate: true"}})
async def start(body: svc.ReviewStart, client: TemporalDep, settings: SettingsDep, caller: DutyOfficer):
    view, existed = await svc.start(client, settings, cached_library(settings.definitions_dir), body, caller.actor)
    return JSONResponse(status_code=200 if existed else 201,
                        content={**view.model_dump(mode="json"), "duplicate": existed})


@router.get("", summary="Reviews, newest first")
def list_reviews(_: Anyone, limit: int = 100, status: str | None = None, date_from: DateFrom = None,
                 date_to: DateTo = None) -> list[dict]:
    if status is not None and status not in STATUSES:
        raise HTTPException(422, detail=f"status: must be one of {', '.join(STATUSES)}")
    return svc.listing(max(1, min(limit, 1000)), status, dates=local_range(date_from, date_to))


@router.get("/{incident_id}", summary="One review: units and their summaries (on time or late), reports, case file")
def get_review(incident_id: str, _: Anyone) -> dict:
    found = svc.detail(incident_id)
    if found is None:
        raise HTTPException(404, detail=f"no review of incident {incident_id!r}")
    return found


class SummaryBody(SummaryContent):
    unit_id: str = Field(min_length=1, max_length=50, description="the participating unit (org unit id)")


@router.post("/{incident_id}/summaries", response_model=ReviewView,
             summary="Record a unit's written summary 书面总结 (what worked, "
                                                 "shortcomings, suggestions); again to revise it")
async def summary(incident_id: str, body: SummaryBody, client: TemporalDep, caller: Anyone) -> dict:
    content = SummaryContent(**body.model_dump(exclude={"unit_id"}))
    return await _step(client, incident_id, "summary",
                       SummaryIn(actor=caller.actor, role=caller.role, unit_id=body.unit_id, summary=content))


@router.post("/{incident_id}/compile", response_model=ReviewView,
             summary="Compile the event report now (when every summary is in, it is "
                                               "compiled by itself)")
async def compile_report(incident_id: str, client: TemporalDep, caller: Anyone) -> dict:
    return await _step(client, incident_id, "compile", CompileIn(actor=caller.actor, role=caller.role))


class SignoffBody(BaseModel):
    decision: Literal["approve", "return"]
    version: int | None = Field(default=None, ge=1, description="the report version signed")
    lessons: str = Field(default="", max_length=20000, description="经验教训 and the overall assessment (to approve)")
    comments: str = Field(default="", max_length=20000, description="what to change (to return)")


@router.post("/{incident_id}/signoff", response_model=ReviewView,
             summary="The leading leader signs the report off (the case file is then "
                                               "sealed) or returns it with comments")
async def signoff(incident_id: str, body: SignoffBody, client: TemporalDep, caller: Anyone) -> dict:
    return await _step(client, incident_id, "signoff", SignoffIn(actor=caller.actor, role=caller.role,
                                                                 **body.model_dump()))


@router.get("/{incident_id}/report.{fmt}", summary="The event report as JSON, HTML or PDF (latest, or ?version=)")
async def report(incident_id: str, fmt: str, _: Anyone,
                 version: Annotated[int | None, Query(ge=1, le=MAX_INT)] = None) -> Response:
    if fmt not in svc.MEDIA:
        raise HTTPException(404, detail=f"no report format {fmt!r}: use json, html or pdf")
    body, media, row = await asyncio.to_thread(svc.report, incident_id, version, fmt)
    headers = {"X-Report-Version": str(row.version), "X-Report-Final": str(row.final).lower()}
    if fmt == "pdf":
        headers["Content-Disposition"] = f'inline; filename="event-report-{incident_id}-v{row.version}.pdf"'
    return Response(content=body, media_type=media, headers=headers)


@router.get("/{incident_id}/casefile", summary="The sealed case file 一事一档 (ZIP); verify with `yingji archive verify` "
                                                "(it holds the audit trail: the roles of /api/audit)")
async def casefile(incident_id: str, _: Supervisor) -> Response:
    row = await asyncio.to_thread(svc.case_file, incident_id)
    if row is None:
        raise HTTPException(404, detail=f"no sealed case file for incident {incident_id!r} (sealed once the report "
                                        "is signed off)")
    return Response(content=row.data, media_type="application/zip", headers={
        "Content-Disposition": f'attachment; filename="{row.filename}"', "X-SHA256": row.sha256})
