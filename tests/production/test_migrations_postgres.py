"""Migrations on PostgreSQL (the same checks as on SQLite, where each migration's test lives): data moved, and the
migrated schema the models' own."""
from __future__ import annotations

from tests.unit.test_migration_answers import upgrade_keeps_the_answers
from tests.unit.test_migrations_match_models import differences


def test_the_answers_on_targets_move_to_rows_of_their_own(pg_url):
    upgrade_keeps_the_answers(pg_url)


def test_the_migrated_schema_is_the_models(pg_url):
    assert differences(pg_url) == []
