"""Imports every table module so that SQLModel.metadata knows them all (Alembic, tests)."""
from store import (activations, audit, auth, broadcasts, bulletins, callouts, console, directory, duty,  # noqa: F401
                   incidents, intake, messages, proposals, publications, refusals, resources, review, roster, scorecards,
                   upward, warnings, webhooks, workorders)

__all__ = ["activations", "audit", "auth", "broadcasts", "bulletins", "callouts", "console", "directory", "duty",
           "incidents", "messages", "proposals", "publications", "refusals", "resources", "review", "roster",
           "scorecards", "upward", "warnings", "webhooks", "workorders"]
