"""What the duty day's route modules share: the chiefs' role and the duty definitions (a DutyError answers as
every service's refusal does: api/app.py)."""
from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from api.deps import Caller, require
from config import get_settings
from definitions.loader import Library, cached_library

Chief = Annotated[Caller, Depends(require("duty_chief", "leading_leader"))]


def lib() -> Library:
    return cached_library(get_settings().definitions_dir)
