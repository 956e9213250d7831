"""answer_intake: every SMS reply and link confirmation written first, then processed (issue 25)

Revision ID: 0022_answer_intake
Revises: 0020_resources2
Create Date: 2026-12-05 02:00:00
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel

import store.types

revision = '0022_answer_intake'
down_revision = '0020_resources2'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'answer_intake',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column('payload', sa.JSON(), nullable=False),
        sa.Column('received_at', store.types.UtcDateTime(timezone=True), nullable=False),
        sa.Column('claimed_by', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column('claimed_at', store.types.UtcDateTime(timezone=True), nullable=True),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('done_at', store.types.UtcDateTime(timezone=True), nullable=True),
        sa.Column('outcome', sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_answer_intake_open', 'answer_intake', ['done_at', 'claimed_at'])


def downgrade() -> None:
    op.drop_index('ix_answer_intake_open', table_name='answer_intake')
    op.drop_table('answer_intake')
