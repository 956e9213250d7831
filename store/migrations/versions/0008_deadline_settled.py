"""incident deadlines: how an unmet time limit was closed with its chain (漏报 omitted | 未报(已终止) lapsed), issue 19

Revision ID: 0008_deadline_settled
Revises: 0003
Create Date: 2026-12-04 16:30:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0008_deadline_settled'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('incident_deadline') as b:
        b.add_column(sa.Column('settled', sa.String(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('incident_deadline') as b:
        b.drop_column('settled')
