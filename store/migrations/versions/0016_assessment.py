"""assessment: the monthly bulletin 通报 (issue 22, item 3)

Revision ID: 0016_assessment
Revises: 0015_incident_times
Create Date: 2026-12-04 23:00:00
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel
import store.types


revision = '0016_assessment'
down_revision = '0015_incident_times'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('bulletin',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('workflow_id', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('subject', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('since', store.types.UtcDateTime(timezone=True), nullable=False),
    sa.Column('until', store.types.UtcDateTime(timezone=True), nullable=False),
    sa.Column('data', sa.JSON(), nullable=False),
    sa.Column('html', sa.Text(), nullable=False),
    sa.Column('pdf', sa.LargeBinary(), nullable=True),
    sa.Column('sha256_json', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('sha256_pdf', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('returns', sa.JSON(), nullable=False),
    sa.Column('compiled_at', store.types.UtcDateTime(timezone=True), nullable=True),
    sa.Column('approved_at', store.types.UtcDateTime(timezone=True), nullable=True),
    sa.Column('approved_by', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('sent', sa.JSON(), nullable=False),
    sa.Column('sealed_at', store.types.UtcDateTime(timezone=True), nullable=True),
    sa.Column('seal_sha256', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('updated_at', store.types.UtcDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('bulletin', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_bulletin_workflow_id'), ['workflow_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_bulletin_status'), ['status'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('bulletin', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_bulletin_status'))
        batch_op.drop_index(batch_op.f('ix_bulletin_workflow_id'))
    op.drop_table('bulletin')
