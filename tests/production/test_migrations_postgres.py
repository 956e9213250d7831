"""Migrations that move data, on PostgreSQL (the same checks as on SQLite, where each migration's test lives)."""
from __future__ import annotations

from tests.unit.test_migration_answers import upgrade_keeps_the_answers


def test_the_answers_on_targets_move_to_rows_of_their_own(pg_url):
    upgrade_keeps_the_answers(pg_url)
