"""workorders: hotline work orders 工单 (orders, their assignments, the webhook's replay guard), issue 21

Revision ID: 0014_workorders
Revises: 0001
Create Date: 2026-12-04 20:10:00
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel
import store.types


revision = '0014_workorders'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('work_order',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('source', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('ticket', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('category', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('urgency', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('place', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('town_id', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('words', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('caller_phone', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('received_at', store.types.UtcDateTime(timezone=True), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('proposed_unit', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('unit_id', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('unit_name', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('sign_due', store.types.UtcDateTime(timezone=True), nullable=True),
    sa.Column('feedback_due', store.types.UtcDateTime(timezone=True), nullable=True),
    sa.Column('complete_due', store.types.UtcDateTime(timezone=True), nullable=True),
    sa.Column('result', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('feedback', sa.JSON(), nullable=False),
    sa.Column('visits', sa.JSON(), nullable=False),
    sa.Column('satisfaction', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('incident_id', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('fire_copied', sa.Boolean(), nullable=False),
    sa.Column('rules_id', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('rules_version', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('created_by', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('completed_at', store.types.UtcDateTime(timezone=True), nullable=True),
    sa.Column('closed_at', store.types.UtcDateTime(timezone=True), nullable=True),
    sa.Column('ended_at', store.types.UtcDateTime(timezone=True), nullable=True),
    sa.Column('updated_at', store.types.UtcDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('work_order', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_work_order_source'), ['source'], unique=False)
        batch_op.create_index(batch_op.f('ix_work_order_category'), ['category'], unique=False)
        batch_op.create_index(batch_op.f('ix_work_order_town_id'), ['town_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_work_order_received_at'), ['received_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_work_order_status'), ['status'], unique=False)
        batch_op.create_index(batch_op.f('ix_work_order_unit_id'), ['unit_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_work_order_incident_id'), ['incident_id'], unique=False)

    op.create_table('work_order_assignment',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('work_order_id', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('unit_id', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('unit_name', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('assigned_at', store.types.UtcDateTime(timezone=True), nullable=False),
    sa.Column('assigned_by', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('answerers', sa.JSON(), nullable=False),
    sa.Column('deadlines', sa.JSON(), nullable=False),
    sa.Column('signed_at', store.types.UtcDateTime(timezone=True), nullable=True),
    sa.Column('signed_by', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('signed_via', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('sign_late_s', sa.Integer(), nullable=True),
    sa.Column('feedback_late_s', sa.Integer(), nullable=True),
    sa.Column('complete_late_s', sa.Integer(), nullable=True),
    sa.Column('completed_at', store.types.UtcDateTime(timezone=True), nullable=True),
    sa.Column('returned_at', store.types.UtcDateTime(timezone=True), nullable=True),
    sa.Column('return_reason', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('sent_back', sa.Integer(), nullable=False),
    sa.Column('closed', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['work_order_id'], ['work_order.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('work_order_id', 'seq', name='uq_work_order_assignment')
    )
    with op.batch_alter_table('work_order_assignment', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_work_order_assignment_work_order_id'), ['work_order_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_work_order_assignment_unit_id'), ['unit_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_work_order_assignment_assigned_at'), ['assigned_at'], unique=False)


def downgrade() -> None:
    op.drop_table('work_order_assignment')
    op.drop_table('work_order')
