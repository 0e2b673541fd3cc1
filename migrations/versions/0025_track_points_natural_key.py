"""patrols: a track point's key is its de-duplication key (patrol_id, device_at); its id goes (issue 19)

Nothing refers to one track point: uploads skip a point already stored by (patrol, device time),
and every reader (the summary's recount, the export, the SOS position, retention) selects by
patrol and orders by device time. The surrogate id cost each point a sequence call and a second
B-tree, (id, device_at), beside the unique (patrol_id, device_at): measured on PostgreSQL, a
1,000-point insert took about a quarter less time without them (bench/README.md, issue 19).

PostgreSQL: the primary key (id, device_at) and the unique key are dropped, the primary key
(patrol_id, device_at) is added on the partitioned table (its index is built on every partition:
on a big table this is the migration's cost, under the table's exclusive lock), then the column
and its sequence. SQLite: the table is rebuilt with the same key.

Downgrade: ids are given again from a new sequence, in no particular order (the old ones are
gone), with the old keys.

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-07

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0025'
down_revision = '0024'
branch_labels = None
depends_on = None

TABLE = 'track_points'


def upgrade():
    if op.get_bind().dialect.name == 'postgresql':
        op.execute(f'LOCK TABLE {TABLE} IN ACCESS EXCLUSIVE MODE')
        op.drop_constraint('pk_track_points', TABLE, type_='primary')
        op.drop_constraint('uq_track_points_patrol_id_device_at', TABLE, type_='unique')
        op.create_primary_key('pk_track_points', TABLE, ['patrol_id', 'device_at'])
        op.drop_column(TABLE, 'id')  # its sequence, owned by the column, goes with it
        return
    with op.batch_alter_table(TABLE, recreate='always') as batch:
        batch.drop_constraint('uq_track_points_patrol_id_device_at', type_='unique')
        batch.drop_column('id')
        batch.create_primary_key('pk_track_points', ['patrol_id', 'device_at'])


def downgrade():
    if op.get_bind().dialect.name == 'postgresql':
        op.execute(f'LOCK TABLE {TABLE} IN ACCESS EXCLUSIVE MODE')
        op.add_column(TABLE, sa.Column('id', sa.BigInteger(), nullable=True))
        op.execute(f'CREATE SEQUENCE {TABLE}_id_seq OWNED BY {TABLE}.id')
        op.execute(f"UPDATE {TABLE} SET id = nextval('{TABLE}_id_seq')")
        op.alter_column(
            TABLE, 'id', nullable=False, server_default=sa.text(f"nextval('{TABLE}_id_seq'::regclass)")
        )
        op.drop_constraint('pk_track_points', TABLE, type_='primary')
        op.create_primary_key('pk_track_points', TABLE, ['id', 'device_at'])
        op.create_unique_constraint('uq_track_points_patrol_id_device_at', TABLE, ['patrol_id', 'device_at'])
        return
    with op.batch_alter_table(TABLE, recreate='always') as batch:
        batch.drop_constraint('pk_track_points', type_='primary')
        # INTEGER PRIMARY KEY: SQLite numbers the copied rows itself
        batch.add_column(sa.Column('id', sa.Integer(), nullable=False, primary_key=True))
        batch.create_unique_constraint('uq_track_points_patrol_id_device_at', ['patrol_id', 'device_at'])
