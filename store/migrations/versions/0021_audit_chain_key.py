"""audit_chain_key: the chain an audit event is hashed into, apart from its subject: the shards of a call-out each
append to a chain of their own instead of queueing on the call-out's one head row (issue 25, "the hot row")

audit_event.chain (= subject for every existing event), UNIQUE(chain, chain_seq) in place of UNIQUE(subject,
chain_seq), an index on (subject, seq) for a subject's events in order; audit_chain is keyed by chain, with the
subject it belongs to.

Revision ID: 0021_audit_chain_key
Revises: 0020_resources2
Create Date: 2026-12-05 01:45:00
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0021_audit_chain_key'
down_revision = '0020_resources2'
branch_labels = None
depends_on = None

S = sqlmodel.sql.sqltypes.AutoString


def upgrade() -> None:
    with op.batch_alter_table('audit_chain') as b:
        b.alter_column('subject', new_column_name='chain', existing_type=sa.String(), existing_nullable=False)
    with op.batch_alter_table('audit_chain') as b:
        b.add_column(sa.Column('subject', S(), nullable=True))
    op.execute("UPDATE audit_chain SET subject = chain")
    with op.batch_alter_table('audit_chain') as b:
        b.alter_column('subject', existing_type=sa.String(), nullable=False)
        b.create_index('ix_audit_chain_subject', ['subject'], unique=False)
    with op.batch_alter_table('audit_event') as b:
        b.add_column(sa.Column('chain', S(), nullable=True))
    op.execute("UPDATE audit_event SET chain = subject")
    with op.batch_alter_table('audit_event') as b:
        b.alter_column('chain', existing_type=sa.String(), nullable=False)
        b.drop_constraint('uq_audit_subject_chain_seq', type_='unique')
        b.create_unique_constraint('uq_audit_chain_seq', ['chain', 'chain_seq'])
        b.create_index('ix_audit_event_subject_seq', ['subject', 'seq'], unique=False)


def downgrade() -> None:
    # (only where no shard chain was written: two chains of one subject share chain positions)
    with op.batch_alter_table('audit_event') as b:
        b.drop_index('ix_audit_event_subject_seq')
        b.drop_constraint('uq_audit_chain_seq', type_='unique')
        b.create_unique_constraint('uq_audit_subject_chain_seq', ['subject', 'chain_seq'])
        b.drop_column('chain')
    op.execute("DELETE FROM audit_chain WHERE chain <> subject")
    with op.batch_alter_table('audit_chain') as b:
        b.drop_index('ix_audit_chain_subject')
        b.drop_column('subject')
        b.alter_column('chain', new_column_name='subject', existing_type=sa.String(), existing_nullable=False)
