"""The migrations build the schema the models describe: every table, column, type and index (alembic's own
comparison, as `alembic revision --autogenerate` makes it), so that a model's change without its migration, or a
migration that misses what its model says (an index added or dropped), fails here and not in production, where the
tables come from the migrations only. On PostgreSQL: tests/production/test_migrations_postgres.py."""
from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine
from sqlmodel import SQLModel


def differences(url: str) -> list:
    """What the models say and the migrated database at `url` lacks or has more (alembic's diff entries)."""
    import store.tables  # noqa: F401  (every table on SQLModel.metadata)
    from store.db import migrate

    migrate(url)
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), SQLModel.metadata)
    finally:
        engine.dispose()


def test_the_migrated_schema_is_the_models(tmp_path):
    assert differences(f"sqlite:///{tmp_path}/schema.db") == []
