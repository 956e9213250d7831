"""The resource register 应急资源: teams, equipment, supply depots with their stock, experts, shelters.

Every role reads (as the directory); the duty office creates and updates records, each checked by the import's
rules (store/resources_import.py): an unknown town, person, team or depot, a bad phone number, a kind not in the
list is a 422 naming the field. `/api/resources/alerts`: stock below its minimum or past its expiry date.
(No `from __future__ import annotations` here: the routes are made per section with the section's model.)
"""
from typing import Annotated

from fastapi import APIRouter, Query

from api.deps import Anyone, DutyOfficer, Offset, ReadSessionDep, SessionDep, SettingsDep, limit_param
from api.services import resources as svc
from store.resources import SECTIONS
from store.resources_import import RECORD_MODELS

router = APIRouter(prefix="/api/resources", tags=["resources"])

Town = Annotated[str | None, Query(max_length=50, description="a town's directory id")]
Kind = Annotated[str | None, Query(max_length=50, description="a team's or equipment's kind, an expert's field, "
                                                              "a shelter's kind (indoor, outdoor)")]


@router.get("/alerts", summary="Stock lines below their minimum or past their expiry date (today, local)")
def stock_alerts(session: ReadSessionDep, settings: SettingsDep, _: Anyone, town: Town = None) -> dict:
    return svc.alerts(session, settings.timezone, town)


@router.get("/stale", summary="Records not confirmed by their owner within a year (the yearly contact confirmation "
                              "round confirms the records a person answers for), or with no owner in the directory")
def stale(session: ReadSessionDep, _: Anyone) -> dict:
    return svc.stale(session)


def _routes(section: str) -> None:
    model = RECORD_MODELS[section]

    def list_section(session: ReadSessionDep, settings: SettingsDep, _: Anyone, town: Town = None, kind: Kind = None,
                     limit: Annotated[int, limit_param(5000)] = 1000, offset: Offset = 0) -> list[dict]:
        return svc.record_list(session, section, settings.timezone, town=town, kind=kind,
                               limit=max(1, min(limit, 5000)), offset=offset)

    def get_one(record_id: str, session: ReadSessionDep, settings: SettingsDep, _: Anyone) -> dict:
        return svc.record(session, section, record_id, settings.timezone)

    def create(body: model, session: SessionDep, settings: SettingsDep, caller: DutyOfficer) -> dict:  # type: ignore[valid-type]
        return svc.save(session, section, body, settings.timezone, actor=caller.actor)

    def update(record_id: str, body: model, session: SessionDep, settings: SettingsDep,  # type: ignore[valid-type]
               caller: DutyOfficer) -> dict:
        return svc.save(session, section, body, settings.timezone, record_id=record_id, actor=caller.actor)

    for fn in (list_section, get_one, create, update):
        fn.__name__ = f"{fn.__name__}_{section}"
    router.add_api_route(f"/{section}", list_section, methods=["GET"], summary=f"The register's {section}, by town and kind")
    router.add_api_route(f"/{section}/{{record_id}}", get_one, methods=["GET"], summary=f"One of the {section}")
    router.add_api_route(f"/{section}", create, methods=["POST"], status_code=201,
                         summary=f"Add to the {section} (the duty office)")
    router.add_api_route(f"/{section}/{{record_id}}", update, methods=["PUT"],
                         summary=f"Replace one of the {section} (the duty office)")


for _section in SECTIONS:
    _routes(_section)
