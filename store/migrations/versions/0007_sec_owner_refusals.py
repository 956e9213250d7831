"""refusals: refused steps counted per (subject, action, actor, status) and hour, out of the procedures' chains

Revision ID: 0007_sec_owner_refusals
Revises: 0001
Create Date: 2026-12-03 18:20:00
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel
import store.types


revision = '0007_sec_owner_refusals'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('refusal',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('subject', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('action', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('actor', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('role', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('workflow_id', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('window_start', store.types.UtcDateTime(timezone=True), nullable=False),
    sa.Column('count', sa.Integer(), nullable=False),
    sa.Column('status', sa.Integer(), nullable=False),
    sa.Column('reason', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('first_at', store.types.UtcDateTime(timezone=True), nullable=False),
    sa.Column('last_at', store.types.UtcDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('subject', 'action', 'actor', 'status', 'window_start', name='uq_refusal_window')
    )
    with op.batch_alter_table('refusal', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_refusal_subject'), ['subject'], unique=False)
        batch_op.create_index(batch_op.f('ix_refusal_actor'), ['actor'], unique=False)
        batch_op.create_index(batch_op.f('ix_refusal_window_start'), ['window_start'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('refusal', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_refusal_window_start'))
        batch_op.drop_index(batch_op.f('ix_refusal_actor'))
        batch_op.drop_index(batch_op.f('ix_refusal_subject'))
    op.drop_table('refusal')
