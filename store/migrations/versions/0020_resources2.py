"""resources2: the monthly readiness check 每月调度 of the rescue teams (runs and each team's answer); each register
record's last confirmation by its owner (the yearly round), issue 23

Revision ID: 0020_resources2
Revises: 0017_resources
Create Date: 2026-12-04 23:45:00
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel
import store.types


revision = '0020_resources2'
down_revision = '0017_resources'
branch_labels = None
depends_on = None

S = sqlmodel.sql.sqltypes.AutoString
CONFIRMED = ('rescue_team', 'supply_depot', 'expert', 'shelter')  # confirmed_at: the owner's yearly confirmation


def _at(name: str, nullable: bool = True) -> sa.Column:
    return sa.Column(name, store.types.UtcDateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table('readiness_run',
                    sa.Column('id', S(), nullable=False),
                    _at('started_at', False),
                    sa.Column('started_by', S(), nullable=False),
                    sa.Column('status', S(), nullable=False),
                    _at('closed_at'),
                    sa.Column('total', sa.Integer(), nullable=False),
                    sa.Column('ready', sa.Integer(), nullable=False),
                    sa.Column('not_ready', sa.Integer(), nullable=False),
                    sa.Column('no_answer', sa.Integer(), nullable=False),
                    _at('updated_at', False),
                    sa.PrimaryKeyConstraint('id'))
    op.create_table('readiness_answer',
                    sa.Column('id', sa.Integer(), nullable=False),
                    sa.Column('run_id', S(), nullable=False),
                    sa.Column('team_id', S(), nullable=False),
                    sa.Column('team_name', S(), nullable=False),
                    sa.Column('duty_phone', S(), nullable=True),
                    sa.Column('leader_id', S(), nullable=True),
                    sa.Column('leader_name', S(), nullable=False),
                    sa.Column('state', S(), nullable=False),
                    sa.Column('answered_by', S(), nullable=True),
                    sa.Column('channel', S(), nullable=True),
                    _at('answered_at'),
                    sa.Column('escalated', sa.Boolean(), nullable=False),
                    _at('updated_at', False),
                    sa.ForeignKeyConstraint(['run_id'], ['readiness_run.id']),
                    sa.PrimaryKeyConstraint('id'),
                    sa.UniqueConstraint('run_id', 'team_id', name='uq_readiness_answer'))
    with op.batch_alter_table('readiness_answer') as b:
        b.create_index(b.f('ix_readiness_answer_run_id'), ['run_id'], unique=False)
        b.create_index(b.f('ix_readiness_answer_team_id'), ['team_id'], unique=False)
    for table in CONFIRMED:
        with op.batch_alter_table(table) as b:
            b.add_column(_at('confirmed_at'))


def downgrade() -> None:
    for table in CONFIRMED:
        with op.batch_alter_table(table) as b:
            b.drop_column('confirmed_at')
    op.drop_table('readiness_answer')
    op.drop_table('readiness_run')
