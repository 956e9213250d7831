"""response proposals 响应建议: a warning that is a plan's start condition proposes the level (issue 20)

Revision ID: 0013_proposals
Revises: 0001
Create Date: 2026-12-04 20:00:00
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel
import store.types


revision = '0013_proposals'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('proposal',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('workflow_id', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('warning_id', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('callout_id', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('plan_id', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('plan_name', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('level', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('leader_id', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('leader_name', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('decided_by', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('decided_at', store.types.UtcDateTime(timezone=True), nullable=True),
    sa.Column('reason', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('incident_id', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('activation_id', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('created_at', store.types.UtcDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', store.types.UtcDateTime(timezone=True), nullable=False),
    sa.Column('view', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('proposal', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_proposal_workflow_id'), ['workflow_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_proposal_warning_id'), ['warning_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_proposal_callout_id'), ['callout_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_proposal_status'), ['status'], unique=False)
        batch_op.create_index(batch_op.f('ix_proposal_leader_id'), ['leader_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_proposal_created_at'), ['created_at'], unique=False)


def downgrade() -> None:
    op.drop_table('proposal')
