"""incident_times: 事发时间, 知悉时间 and the reporting unit's report time, its limit and how late (迟报); 拉条, issue 21

Revision ID: 0015_incident_times
Revises: 0003
Create Date: 2026-12-04 21:00:00
"""
from alembic import op
import sqlalchemy as sa
import store.types


revision = '0015_incident_times'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('incident') as b:
        b.add_column(sa.Column('occurred_at', store.types.UtcDateTime(timezone=True), nullable=True))
        b.add_column(sa.Column('known_at', store.types.UtcDateTime(timezone=True), nullable=True))
        b.add_column(sa.Column('reported_at', store.types.UtcDateTime(timezone=True), nullable=True))
        b.add_column(sa.Column('unit_due_at', store.types.UtcDateTime(timezone=True), nullable=True))
        b.add_column(sa.Column('unit_late_by_s', sa.Integer(), nullable=True))
        b.add_column(sa.Column('vertical', sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('incident') as b:
        for c in ('vertical', 'unit_late_by_s', 'unit_due_at', 'reported_at', 'known_at', 'occurred_at'):
            b.drop_column(c)
