"""shifts: an index on ends_at, for the shifts not over yet (coverage gaps, the console's overview)

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07

"""
from alembic import op


# revision identifiers, used by Alembic.
revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('shifts', schema=None) as batch_op:
        batch_op.create_index('ix_shifts_ends_at', ['ends_at'], unique=False)


def downgrade():
    with op.batch_alter_table('shifts', schema=None) as batch_op:
        batch_op.drop_index('ix_shifts_ends_at')
