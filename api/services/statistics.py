"""The figures of call-outs: real ones and drills counted apart (a drill never counts as a call-out)."""
from __future__ import annotations

from typing import Any

from sqlmodel import Session

from store.duty import callout_statistics, drill_statistics


def callouts_and_drills(s: Session) -> tuple[Any, Any]:
    """(the statistics of real call-outs, those of drills)."""
    return callout_statistics(s), drill_statistics(s)
