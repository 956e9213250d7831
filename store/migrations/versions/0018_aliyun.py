"""directory: each person's DingTalk userid, for personal work notifications 工作通知 (issue 24)

Revision ID: 0018_aliyun
Revises: 0015_incident_times
Create Date: 2026-12-04 23:00:00
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0018_aliyun'
down_revision = '0015_incident_times'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('person') as b:
        b.add_column(sa.Column('dingtalk_user_id', sqlmodel.sql.sqltypes.AutoString(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('person') as b:
        b.drop_column('dingtalk_user_id')
