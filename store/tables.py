"""Imports every table module so that SQLModel.metadata knows them all (Alembic, tests)."""
from store import (activations, audit, auth, callouts, console, directory, duty, incidents, messages, refusals,  # noqa: F401
                   review, roster, warnings, workorders)
