"""callout_answer: the answers shown on the board ahead of their record, in rows of their own

0025 put an answer the API had stored on its target's row (callout_target.answered_at). Writing it locked the row,
and a shard's flush holds the rows it writes until it commits, so the SMS match (and every reply of its batch) waited
for whichever flush held a person's target (PostgreSQL logged waits up to 0.45 s at 100,000 persons;
docs/performance.md, "Answers in rows of their own"). An answer is now a row of its own, inserted and never updated,
with no foreign key, so storing it locks no target row (store/answers.py `mark_answered`). The values 0025 wrote move
here; the column goes.

Revision ID: 0026_callout_answer
Revises: 0025_callout_target_answered
Create Date: 2026-12-07 09:00:00
"""
import sqlalchemy as sa
from alembic import op
import sqlmodel

import store.types

revision = '0026_callout_answer'
down_revision = '0025_callout_target_answered'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'callout_answer',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('callout_id', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column('target_id', sa.Integer(), nullable=False),
        sa.Column('person_id', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column('received_at', store.types.UtcDateTime(timezone=True), nullable=False),
        sa.Column('stored_at', store.types.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_callout_answer_changes', 'callout_answer', ['callout_id', 'stored_at'])
    op.create_index(op.f('ix_callout_answer_target_id'), 'callout_answer', ['target_id'])
    op.execute("INSERT INTO callout_answer (callout_id, target_id, person_id, received_at, stored_at) "
               "SELECT callout_id, id, person_id, answered_at, updated_at FROM callout_target "
               "WHERE answered_at IS NOT NULL")
    with op.batch_alter_table('callout_target') as batch:
        batch.drop_column('answered_at')


def downgrade() -> None:
    with op.batch_alter_table('callout_target') as batch:
        batch.add_column(sa.Column('answered_at', store.types.UtcDateTime(timezone=True), nullable=True))
    op.execute("UPDATE callout_target SET answered_at = (SELECT min(a.received_at) FROM callout_answer a "
               "WHERE a.target_id = callout_target.id)")
    op.drop_index(op.f('ix_callout_answer_target_id'), table_name='callout_answer')
    op.drop_index('ix_callout_answer_changes', table_name='callout_answer')
    op.drop_table('callout_answer')
