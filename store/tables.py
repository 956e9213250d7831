"""Imports every table module so that SQLModel.metadata knows them all (Alembic, tests)."""
from store import (activations, audit, auth, callouts, console, directory, duty, incidents, messages,  # noqa: F401
                   publications, refusals, review, roster, warnings)

__all__ = ["activations", "audit", "auth", "callouts", "console", "directory", "duty", "incidents", "messages",
           "publications", "refusals", "review", "roster", "warnings"]
