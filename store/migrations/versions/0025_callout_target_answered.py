"""callout_target.answered_at: an answer shown on the board as soon as the API has stored it

The API writes it as it matches an answer to the person's targets (an SMS reply in the transaction that stores and
matches it, any other answer beside the signal to its workflow: store/answers.py `mark_answered`); the target's
workflow records the acknowledgement (acknowledged_at, state) when its turn comes, which under a district-wide burst
can be seconds later (issue 25). Only the API writes this column.

Revision ID: 0025_callout_target_answered
Revises: 0024_callout_target_changes
Create Date: 2026-12-07 03:00:00
"""
import sqlalchemy as sa
from alembic import op

import store.types

revision = '0025_callout_target_answered'
down_revision = '0024_callout_target_changes'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('callout_target', sa.Column('answered_at', store.types.UtcDateTime(timezone=True), nullable=True))


def downgrade() -> None:
    op.drop_column('callout_target', 'answered_at')
