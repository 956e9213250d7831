"""directory: each person's language decides the texts they receive (zh | en), issue 20

Revision ID: 0009_person_language
Revises: 0001
Create Date: 2026-12-04 19:40:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0009_person_language'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('person') as b:
        b.add_column(sa.Column('language', sa.String(), nullable=False, server_default='zh'))


def downgrade() -> None:
    with op.batch_alter_table('person') as b:
        b.drop_column('language')
