"""callout_relay: 到户到人, one village's relay in a call-out (issue 20)

Revision ID: 0012_relay
Revises: 0001
Create Date: 2026-12-04 20:00:00
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel

import store.types

revision = '0012_relay'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('callout_relay',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('callout_id', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('target_key', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('org_unit_id', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('person_id', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('state', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('requested_at', store.types.UtcDateTime(timezone=True), nullable=True),
    sa.Column('due_at', store.types.UtcDateTime(timezone=True), nullable=True),
    sa.Column('confirmed_at', store.types.UtcDateTime(timezone=True), nullable=True),
    sa.Column('households', sa.Integer(), nullable=True),
    sa.Column('confirmed_by', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('on_behalf', sa.Boolean(), nullable=False),
    sa.Column('late', sa.Boolean(), nullable=False),
    sa.Column('answers', sa.Integer(), nullable=False),
    sa.Column('escalated_to', sa.JSON(), nullable=False),
    sa.Column('updated_at', store.types.UtcDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['callout_id'], ['callout.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('callout_id', 'target_key', name='uq_callout_relay')
    )
    with op.batch_alter_table('callout_relay', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_callout_relay_callout_id'), ['callout_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('callout_relay', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_callout_relay_callout_id'))
    op.drop_table('callout_relay')
