"""Imports every table module so that SQLModel.metadata knows them all (Alembic, tests)."""
from store import (activations, audit, auth, callouts, console, directory, duty, incidents, messages, proposals,  # noqa: F401
                   refusals, review, roster, warnings)
