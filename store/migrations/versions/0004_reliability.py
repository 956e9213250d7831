"""reliability: an index on outbox (subject, person_id) for acknowledgements at 10,000-person scale

Revision ID: 0004_reliability
Revises: 0001
Create Date: 2026-11-30 09:00:00
"""
from alembic import op


revision = '0004_reliability'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_outbox_subject_person', 'outbox', ['subject', 'person_id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_outbox_subject_person', table_name='outbox')
