"""callout_target (callout_id, updated_at): a live board's poll reads only the rows changed since its last one

A board polls `callout_id = … AND updated_at >= since` every 0.5 s (api/services/board.py `changed_rows`). With only
the index on callout_id, each poll read every target of the call-out: ~60 ms of PostgreSQL's CPU at 100,000 targets,
~1-2 ms with this index (issue 25).

Revision ID: 0024_callout_target_changes
Revises: 0001
Create Date: 2026-12-07 00:00:00
"""
from alembic import op

revision = '0024_callout_target_changes'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_callout_target_changes', 'callout_target', ['callout_id', 'updated_at'])


def downgrade() -> None:
    op.drop_index('ix_callout_target_changes', table_name='callout_target')
