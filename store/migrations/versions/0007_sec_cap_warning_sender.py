"""sec-cap: a warning is unique per (sender, identifier), as CAP 1.2 defines, not per identifier

The primary key (`W` + a hash of sender|identifier) already keeps a resent warning out; the
unique index on the identifier alone made another sender's warning with the same identifier a
"duplicate" (issue 16, finding 2). The index stays, not unique.

Revision ID: 0007_sec_cap_warning_sender
Revises: 0001
"""
from alembic import op


revision = '0007_sec_cap_warning_sender'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('warning', schema=None) as batch_op:
        batch_op.drop_index('ix_warning_identifier')
        batch_op.create_index('ix_warning_identifier', ['identifier'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('warning', schema=None) as batch_op:
        batch_op.drop_index('ix_warning_identifier')
        batch_op.create_index('ix_warning_identifier', ['identifier'], unique=True)
