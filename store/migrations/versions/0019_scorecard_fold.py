"""scorecard_fold: each call-out's targets folded from its trail for the scorecards, with the chain length; an index
for the subjects that began in a period (issue 22)

Revision ID: 0019_scorecard_fold
Revises: 0001
Create Date: 2026-12-04 23:40:00
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0019_scorecard_fold'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'scorecard_fold',
        sa.Column('subject', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column('length', sa.Integer(), nullable=False),
        sa.Column('fold', sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint('subject'),
    )
    # the subjects whose trail began in a period (their first event): the scorecards' and bulletins' first question
    op.create_index('ix_audit_event_chain_start', 'audit_event', ['chain_seq', 'at'])


def downgrade() -> None:
    op.drop_index('ix_audit_event_chain_start', table_name='audit_event')
    op.drop_table('scorecard_fold')
