"""sends: fencing of outbox claims (which activity attempt owns a row, when it asked the gateway) and the
account-wide send rate (one row per provider account and channel, shared by every worker)

Revision ID: 0007_sends
Revises: 0001
Create Date: 2026-12-03 18:30:00
"""
from alembic import op
import sqlalchemy as sa
import store.types


revision = '0007_sends'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('outbox') as batch:
        batch.add_column(sa.Column('claim_by', sa.String(), nullable=True))
        batch.add_column(sa.Column('claim_attempt', sa.Integer(), nullable=True))
        batch.add_column(sa.Column('gateway_at', store.types.UtcDateTime(timezone=True), nullable=True))
    op.create_table('send_rate',
                    sa.Column('key', sa.String(), nullable=False),
                    sa.Column('next_at', sa.Float(), nullable=False),
                    sa.PrimaryKeyConstraint('key'))


def downgrade() -> None:
    op.drop_table('send_rate')
    with op.batch_alter_table('outbox') as batch:
        batch.drop_column('gateway_at')
        batch.drop_column('claim_attempt')
        batch.drop_column('claim_by')
