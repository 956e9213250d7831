"""Imports every table module so that SQLModel.metadata knows them all (Alembic, tests)."""
from store import (activations, audit, auth, callouts, console, directory, incidents, messages, review, roster,  # noqa: F401
                   warnings)
