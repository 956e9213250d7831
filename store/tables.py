"""Imports every table module so that SQLModel.metadata knows them all (Alembic, tests)."""
from store import (activations, audit, auth, broadcasts, callouts, console, directory, duty, incidents,  # noqa: F401
                   messages, proposals, publications, refusals, resources, review, roster, warnings, webhooks, workorders)

__all__ = ["activations", "audit", "auth", "broadcasts", "callouts", "console", "directory", "duty", "incidents",
           "messages", "proposals", "publications", "refusals", "resources", "review", "roster", "warnings", "webhooks", "workorders"]
