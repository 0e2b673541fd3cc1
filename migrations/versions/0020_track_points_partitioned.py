"""patrols: track_points range-partitioned by the month of device_at on PostgreSQL (SQLite unchanged)

The table is converted in one transaction, holding it exclusively (uploads wait, nothing is lost):
the old table is renamed aside, the partitioned one is made under the old name with the same
columns, sequence, keys and foreign key (the primary key becomes (id, device_at), as PostgreSQL
wants the partition key in every unique key), a partition for every month that holds points plus
the current month and the next two (UTC months, named ``track_points_pYYYY_MM``, as
``core/partitions.py`` names them) and the default partition; every row is copied with its id,
the counts are compared, and the old table is dropped. Downgrade does the reverse.

Time: one pass over the table to find its months and one to copy it (about a minute per 10 million
points on a small server); the table is locked throughout.

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-07

"""
from datetime import UTC, date, datetime

from alembic import op
import sqlalchemy as sa

# revision identifiers, used by Alembic.
revision = '0020'
down_revision = '0019'
branch_labels = None
depends_on = None

TABLE = 'track_points'
ASIDE = 'track_points_unpartitioned'
COLUMNS = 'id, patrol_id, device_at, received_at, lat, lon, accuracy_m'
MONTHS_AHEAD = 2  # as PARTITION_MONTHS_AHEAD's default; the periodic task keeps it so afterwards
NEXT_ID = sa.text("nextval('track_points_id_seq'::regclass)")


def _columns():
    return [
        sa.Column('id', sa.BigInteger(), server_default=NEXT_ID, nullable=False),
        sa.Column('patrol_id', sa.Integer(), nullable=False),
        sa.Column('device_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('lat', sa.Float(), nullable=False),
        sa.Column('lon', sa.Float(), nullable=False),
        sa.Column('accuracy_m', sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(['patrol_id'], ['patrols.id'], name='fk_track_points_patrol_id_patrols', ondelete='CASCADE'),
        sa.UniqueConstraint('patrol_id', 'device_at', name='uq_track_points_patrol_id_device_at'),
    ]


def _next_month(month):
    return date(month.year + month.month // 12, month.month % 12 + 1, 1)


def _bound(month):
    # With its offset, so the session's TimeZone does not move the bound.
    return f"'{month.year:04d}-{month.month:02d}-01 00:00:00+00'"


def _rename_keys(table, suffix_from, suffix_to):
    for name in ('pk_track_points', 'uq_track_points_patrol_id_device_at', 'fk_track_points_patrol_id_patrols'):
        op.execute(f'ALTER TABLE {table} RENAME CONSTRAINT {name}{suffix_from} TO {name}{suffix_to}')


def _copy_all(source):
    """Every row of ``source`` into the new track_points, ids kept; fails unless the counts agree."""
    op.execute(f'INSERT INTO {TABLE} ({COLUMNS}) SELECT {COLUMNS} FROM {source}')
    bind = op.get_bind()
    before = bind.execute(sa.text(f'SELECT count(*) FROM {source}')).scalar()
    after = bind.execute(sa.text(f'SELECT count(*) FROM {TABLE}')).scalar()
    if before != after:
        raise RuntimeError(f'{source} held {before} track points, {TABLE} {after}; nothing was changed')


def upgrade():
    if op.get_bind().dialect.name != 'postgresql':
        return
    bind = op.get_bind()
    op.execute(f'LOCK TABLE {TABLE} IN ACCESS EXCLUSIVE MODE')
    op.rename_table(TABLE, ASIDE)
    _rename_keys(ASIDE, '', '_unpartitioned')
    op.create_table(
        TABLE, *_columns(),
        sa.PrimaryKeyConstraint('id', 'device_at', name='pk_track_points'),
        postgresql_partition_by='RANGE (device_at)',
    )
    op.execute(f'ALTER SEQUENCE track_points_id_seq OWNED BY {TABLE}.id')

    present = bind.execute(sa.text(
        f"SELECT DISTINCT CAST(date_trunc('month', device_at AT TIME ZONE 'UTC') AS date) FROM {ASIDE}"
    )).scalars().all()
    now = datetime.now(UTC)
    months = {date(now.year, now.month, 1)}
    for _ in range(MONTHS_AHEAD):
        months.add(_next_month(max(months)))
    for month in sorted(months | set(present)):
        op.execute(
            f'CREATE TABLE {TABLE}_p{month.year:04d}_{month.month:02d} PARTITION OF {TABLE} '
            f'FOR VALUES FROM ({_bound(month)}) TO ({_bound(_next_month(month))})'
        )
    op.execute(f'CREATE TABLE {TABLE}_default PARTITION OF {TABLE} DEFAULT')

    _copy_all(ASIDE)
    op.drop_table(ASIDE)


def downgrade():
    if op.get_bind().dialect.name != 'postgresql':
        return
    aside = 'track_points_partitioned'
    op.execute(f'LOCK TABLE {TABLE} IN ACCESS EXCLUSIVE MODE')
    op.rename_table(TABLE, aside)
    _rename_keys(aside, '', '_partitioned')
    op.create_table(TABLE, *_columns(), sa.PrimaryKeyConstraint('id', name='pk_track_points'))
    op.execute(f'ALTER SEQUENCE track_points_id_seq OWNED BY {TABLE}.id')
    _copy_all(aside)
    op.drop_table(aside)  # with its partitions
