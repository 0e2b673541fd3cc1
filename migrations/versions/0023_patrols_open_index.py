"""patrols: a partial index of the patrols open now (checked in, not checked out, not closed by the
task), by volunteer (issue 19)

``ix_patrols_open (volunteer_id) WHERE check_in_client_id IS NOT NULL AND check_out_client_id IS NULL
AND auto_closed IS false``: the SOS finds the raiser's checked-in place and the volunteers on duty
near it among these few rows, never among the years of patrols behind (``patrols/sos/service.py``),
and the close of forgotten check-outs reads them too (``patrols/presence/tasks.py``). The predicate is
spelled as the app's statements spell it (``IS false``, SQLite ``IS 0``), for PostgreSQL proves
``auto_closed IS false`` from itself, not ``NOT auto_closed``.

A plain CREATE INDEX, not a batch (a batch copy of ``patrols`` on SQLite would drop its roll-up
triggers, 0010). Time: one scan of ``patrols``, write-locked while it runs: 0.17 s for 138,775 rows
(34 MB) on a loaded 2-core machine, about 10 s for the 2.1 GB of a year of the city.

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-07

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0023'
down_revision = '0022'
branch_labels = None
depends_on = None

INDEX = 'ix_patrols_open'
OPEN = 'check_in_client_id IS NOT NULL AND check_out_client_id IS NULL AND auto_closed IS {false}'


def upgrade():
    op.create_index(
        INDEX, 'patrols', ['volunteer_id'], unique=False,
        postgresql_where=sa.text(OPEN.format(false='false')), sqlite_where=sa.text(OPEN.format(false='0')),
    )


def downgrade():
    op.drop_index(INDEX, table_name='patrols')
