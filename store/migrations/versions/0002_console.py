"""console: one-time login codes sent by SMS

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 11:30:00
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel
import store.types


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('console_login_code',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('person_id', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('code_hash', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('created_at', store.types.UtcDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', store.types.UtcDateTime(timezone=True), nullable=False),
    sa.Column('used_at', store.types.UtcDateTime(timezone=True), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('outbox_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['person_id'], ['person.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('console_login_code', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_console_login_code_created_at'), ['created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_console_login_code_person_id'), ['person_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('console_login_code', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_console_login_code_person_id'))
        batch_op.drop_index(batch_op.f('ix_console_login_code_created_at'))
    op.drop_table('console_login_code')
