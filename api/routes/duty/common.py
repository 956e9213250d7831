"""What the duty day's route modules share: the chiefs' role, the duty definitions, the DutyError answer."""
from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException

from api.deps import Caller, require
from api.services import duty as svc
from config import get_settings
from definitions.loader import Library, load_library

Chief = Annotated[Caller, Depends(require("duty_chief", "leading_leader"))]


def lib() -> Library:
    return load_library(get_settings().definitions_dir)


def err(exc: svc.DutyError) -> HTTPException:
    return HTTPException(exc.status, detail=str(exc))
