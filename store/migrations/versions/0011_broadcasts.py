"""broadcasts: 应急广播 requests to the IP broadcast platform, their areas' receipts, and webhook nonces (issue 20)

Revision ID: 0011_broadcasts
Revises: 0001
Create Date: 2026-12-04 20:00:00
"""
from alembic import op
import sqlalchemy as sa

import store.types


revision = '0011_broadcasts'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'broadcast',
        sa.Column('request_id', sa.String(), nullable=False),
        sa.Column('subject', sa.String(), nullable=False),
        sa.Column('workflow_id', sa.String(), nullable=True),
        sa.Column('warning_id', sa.String(), nullable=True),
        sa.Column('purpose', sa.String(), nullable=False),
        sa.Column('level', sa.String(), nullable=False),
        sa.Column('drill', sa.Boolean(), nullable=False),
        sa.Column('text', sa.String(), nullable=False),
        sa.Column('repeat', sa.Integer(), nullable=False),
        sa.Column('task_id', sa.String(), nullable=True),
        sa.Column('status', sa.String(), nullable=False),
        sa.Column('error', sa.String(), nullable=True),
        sa.Column('requested_at', store.types.UtcDateTime(timezone=True), nullable=False),
        sa.Column('accepted_at', store.types.UtcDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint('request_id'),
    )
    op.create_index('ix_broadcast_subject', 'broadcast', ['subject'], unique=False)
    op.create_index('ix_broadcast_warning_id', 'broadcast', ['warning_id'], unique=False)
    op.create_index('ix_broadcast_task_id', 'broadcast', ['task_id'], unique=False)
    op.create_table(
        'broadcast_area',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('request_id', sa.String(), nullable=False),
        sa.Column('town_id', sa.String(), nullable=False),
        sa.Column('area', sa.String(), nullable=False),
        sa.Column('status', sa.String(), nullable=False),
        sa.Column('terminals', sa.JSON(), nullable=False),
        sa.Column('updated_at', store.types.UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['request_id'], ['broadcast.request_id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('request_id', 'town_id', name='uq_broadcast_area'),
    )
    op.create_index('ix_broadcast_area_request_id', 'broadcast_area', ['request_id'], unique=False)
    op.create_index('ix_broadcast_area_town_id', 'broadcast_area', ['town_id'], unique=False)
    op.create_table(
        'webhook_nonce',
        sa.Column('key', sa.String(), nullable=False),
        sa.Column('seen_at', store.types.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('key'),
    )
    op.create_index('ix_webhook_nonce_seen_at', 'webhook_nonce', ['seen_at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_webhook_nonce_seen_at', table_name='webhook_nonce')
    op.drop_table('webhook_nonce')
    op.drop_index('ix_broadcast_area_town_id', table_name='broadcast_area')
    op.drop_index('ix_broadcast_area_request_id', table_name='broadcast_area')
    op.drop_table('broadcast_area')
    op.drop_index('ix_broadcast_task_id', table_name='broadcast')
    op.drop_index('ix_broadcast_warning_id', table_name='broadcast')
    op.drop_index('ix_broadcast_subject', table_name='broadcast')
    op.drop_table('broadcast')
