"""callout_target (callout_id, shard, id): a shard loads its own targets, not the whole call-out's

Each shard of a call-out starts by reading its targets' specs (activities/callout.py `load_shard`:
`callout_id = … AND shard = … ORDER BY id`). With the index on callout_id alone, each of a 100,000-person
call-out's 200 shards read all 100,000 rows to keep its 500: 132 ms of PostgreSQL a shard, 26 s in all of a run
that took 186 s on two cores (issue 25, pg_stat_statements). With this index a shard reads its own rows, in order.

Revision ID: 0027_callout_target_shard
Revises: 0026_callout_answer
Create Date: 2026-12-07 00:00:00
"""
from alembic import op

revision = '0027_callout_target_shard'
down_revision = '0026_callout_answer'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_callout_target_shard', 'callout_target', ['callout_id', 'shard', 'id'])


def downgrade() -> None:
    op.drop_index('ix_callout_target_shard', table_name='callout_target')
