"""Publications below orange 精准发布: what was sent to whom, delivered or failed (api.services.publications)."""
from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter

from api.deps import Anyone, ReadSessionDep, limit_param
from api.services import publications as svc

router = APIRouter(prefix="/api/publications", tags=["publications"])


@router.get("", response_model=list[svc.PublicationOut], summary="Publications below orange, newest first")
def list_publications(session: ReadSessionDep, _: Anyone, limit: Annotated[int, limit_param(500)] = 50) -> list[dict]:
    return svc.publication_list(session, limit)


@router.get("/{publication_id}", response_model=svc.PublicationDetailOut,
            summary="One publication: per-tier counts, the delivery rate (delivered / sent), who failed, every message")
def get_publication(publication_id: str, session: ReadSessionDep, _: Anyone) -> dict:
    return svc.publication_detail(session, publication_id)
