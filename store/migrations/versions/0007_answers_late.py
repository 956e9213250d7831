"""answers: a late mark on call-out targets; replies held as ambiguous and who assigned them (issues 15, 16)

Revision ID: 0007_answers_late
Revises: 0001
Create Date: 2026-12-03 18:00:00
"""
from alembic import op
import sqlalchemy as sa

import store.types


revision = '0007_answers_late'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('callout_target') as b:
        b.add_column(sa.Column('ack_late', sa.Boolean(), nullable=False, server_default=sa.false()))
    with op.batch_alter_table('inbox') as b:
        b.add_column(sa.Column('person_id', sa.String(), nullable=True))
        b.add_column(sa.Column('assigned_by', sa.String(), nullable=True))
        b.add_column(sa.Column('assigned_at', store.types.UtcDateTime(timezone=True), nullable=True))
    op.create_index('ix_inbox_handled', 'inbox', ['handled'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_inbox_handled', table_name='inbox')
    with op.batch_alter_table('inbox') as b:
        b.drop_column('assigned_at')
        b.drop_column('assigned_by')
        b.drop_column('person_id')
    with op.batch_alter_table('callout_target') as b:
        b.drop_column('ack_late')
