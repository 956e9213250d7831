"""Imports every table module so that SQLModel.metadata knows them all (Alembic, tests)."""
from store import audit, auth, callouts, console, directory, duty, incidents, messages, roster, warnings  # noqa: F401
