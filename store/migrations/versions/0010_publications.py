"""publications below orange 精准发布 (issue 20): warning.publication_id and the publication read model

Revision ID: 0010_publications
Revises: 0001
Create Date: 2026-12-04 19:40:00
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel
import store.types


revision = '0010_publications'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('warning') as b:
        b.add_column(sa.Column('publication_id', sqlmodel.sql.sqltypes.AutoString(), nullable=True))
        b.create_index(b.f('ix_warning_publication_id'), ['publication_id'], unique=False)
    op.create_table('publication',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('warning_id', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('plan_id', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('plan_version', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('level', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('purpose', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('title', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('drill', sa.Boolean(), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('superseded_by', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('counts', sa.JSON(), nullable=False),
    sa.Column('started_at', store.types.UtcDateTime(timezone=True), nullable=False),
    sa.Column('ended_at', store.types.UtcDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('publication') as b:
        b.create_index(b.f('ix_publication_status'), ['status'], unique=False)
        b.create_index(b.f('ix_publication_warning_id'), ['warning_id'], unique=False)


def downgrade() -> None:
    op.drop_table('publication')
    with op.batch_alter_table('warning') as b:
        b.drop_index(b.f('ix_warning_publication_id'))
        b.drop_column('publication_id')
