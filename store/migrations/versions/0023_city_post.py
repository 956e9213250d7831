"""city_post: a post to the city line written before it is sent, so that the platform's receipt (签收) that comes
before `report.city.sent` is recorded is kept on it, then recorded right after that event (store/upward.py)

Revision ID: 0023_city_post
Revises: 0022_answer_intake
Create Date: 2026-12-07 10:00:00
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel

import store.types

revision = '0023_city_post'
down_revision = '0022_answer_intake'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'city_post',
        sa.Column('subject', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column('step', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column('workflow_id', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column('begun_at', store.types.UtcDateTime(timezone=True), nullable=False),
        sa.Column('settled_at', store.types.UtcDateTime(timezone=True), nullable=True),
        sa.Column('held', sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint('subject', 'step'),
    )


def downgrade() -> None:
    op.drop_table('city_post')
