"""directory: each person's language decides the texts they receive (zh | en); short aliases of signed
links for texts (short_link), issue 20

Revision ID: 0009_person_language
Revises: 0001
Create Date: 2026-12-04 19:40:00
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel

import store.types


revision = '0009_person_language'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('person') as b:
        b.add_column(sa.Column('language', sqlmodel.sql.sqltypes.AutoString(), nullable=False, server_default='zh'))
    op.create_table('short_link',
                    sa.Column('code', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
                    sa.Column('target', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
                    sa.Column('created_at', store.types.UtcDateTime(timezone=True), nullable=False),
                    sa.PrimaryKeyConstraint('code'))


def downgrade() -> None:
    op.drop_table('short_link')
    with op.batch_alter_table('person') as b:
        b.drop_column('language')
