"""console sessions kept server-side (logout ends them); login codes bound to the browser that asked

Revision ID: 0007_sec_auth_sessions
Revises: 0002
Create Date: 2026-12-03 18:30:00
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel
import store.types


revision = '0007_sec_auth_sessions'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('console_session',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('method', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('person_id', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('token_id', sa.Integer(), nullable=True),
    sa.Column('created_at', store.types.UtcDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', store.types.UtcDateTime(timezone=True), nullable=False),
    sa.Column('ended_at', store.types.UtcDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('console_session', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_console_session_expires_at'), ['expires_at'], unique=False)
    with op.batch_alter_table('console_login_code', schema=None) as batch_op:
        batch_op.add_column(sa.Column('client_hash', sqlmodel.sql.sqltypes.AutoString(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('console_login_code', schema=None) as batch_op:
        batch_op.drop_column('client_hash')
    with op.batch_alter_table('console_session', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_console_session_expires_at'))
    op.drop_table('console_session')
