"""考核 scorecards per town (street) and department over a period, from the audit trail (store/scorecards.py).

Read by supervisors, the duty office and admin; nothing changes."""
from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query

from api.deps import DUTY, Caller, ReadSessionDep, require
from api.services import scorecards as svc

router = APIRouter(prefix="/api/scorecards", tags=["scorecards"])

Reader = Annotated[Caller, Depends(require("supervisor", *DUTY))]
From = Annotated[str | None, Query(alias="from", max_length=10, description="from this local date (YYYY-MM-DD), included")]
To = Annotated[str | None, Query(alias="to", max_length=10, description="to this local date (YYYY-MM-DD), included")]


@router.get("", summary="Every town's and department's scorecard over the period (real events only)")
def list_scorecards(session: ReadSessionDep, _: Reader, date_from: From = None, date_to: To = None,
                    kind: Literal["town", "department"] | None = None) -> dict:
    return svc.listing(session, date_from, date_to, kind)


@router.get("/{unit_id}", summary="One unit's scorecard over the period, with the events each figure came from")
def get_scorecard(unit_id: str, session: ReadSessionDep, _: Reader, date_from: From = None,
                  date_to: To = None) -> dict:
    return svc.one(session, unit_id, date_from, date_to)
