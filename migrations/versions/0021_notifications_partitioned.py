"""notifications: range-partitioned by the month of created_at on PostgreSQL; dedupe keys in a table of their own

Both dialects:

- ``notification_dedupe (user_id, dedupe_key) PRIMARY KEY, created_at``: "once per user and cause"
  moves here from the unique key ``uq_notifications_user_dedupe``, which a partitioned table cannot
  keep (its unique keys must hold created_at); filled from the keyed notifications. The
  notifications keep ``dedupe_key`` with a plain index ``ix_notifications_user_dedupe``.
- ``push_receipts.notification_created_at`` (filled from the notification), and the foreign key
  into ``notifications`` dropped (why: ``notifications/delivery/models.py``); a receipt whose
  notification is gone cannot exist (the key was ON DELETE CASCADE until now).

PostgreSQL: ``notifications`` is converted in one transaction, holding it exclusively (writers and
readers wait, nothing is lost), as 0020 did for track points: the old table is set aside, the
partitioned one is made under the old name with the same columns, sequence, checks, foreign keys
and indexes (the primary key becomes (id, created_at)), a partition for every month that holds
rows plus the current month and the next two (UTC months, ``notifications_pYYYY_MM``, as
``core/partitions.py`` names them) and the default partition; every row is copied with its id, the
counts are compared, and the old table is dropped. Downgrade does the reverse.

Time: one pass over notifications to find its months, one to copy it, one to fill the receipts'
column and one for the keys (about a minute per 10 million rows on a small server).

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-07

"""
from datetime import UTC, date, datetime

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

# revision identifiers, used by Alembic.
revision = '0021'
down_revision = '0020'
branch_labels = None
depends_on = None

TABLE = 'notifications'
ASIDE = 'notifications_unpartitioned'
COLUMNS = (
    'id, user_id, kind, title, body, data, urgent, dedupe_key, broadcast_id, created_at, read_at, push_status, '
    'push_due_at, push_attempts, push_claim, push_claimed_until, push_device_ids, push_error, push_wait, pushed_at'
)
MONTHS_AHEAD = 2  # as PARTITION_MONTHS_AHEAD's default; the periodic task keeps it so afterwards
NEXT_ID = sa.text("nextval('notifications_id_seq'::regclass)")
JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql')
PENDING = "push_status = 'pending'"
OUTAGE_ROWS = "push_status = 'pending' AND push_wait = 'outage'"
INDEXES = (
    'ix_notifications_broadcast_id', 'ix_notifications_push_due', 'ix_notifications_push_outage',
    'ix_notifications_unread', 'ix_notifications_user_id_id',
)
RECEIPTS_FK = 'fk_push_receipts_notification_id_notifications'


def _columns():
    return [
        sa.Column('id', sa.BigInteger(), server_default=NEXT_ID, nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('kind', sa.String(length=40), nullable=False),
        sa.Column('title', sa.String(length=200), nullable=False),
        sa.Column('body', sa.String(length=1000), nullable=False),
        sa.Column('data', JSON, nullable=False),
        sa.Column('urgent', sa.Boolean(), nullable=False),
        sa.Column('dedupe_key', sa.String(length=120), nullable=True),
        sa.Column('broadcast_id', sa.Integer(), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('read_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('push_status', sa.String(length=16), nullable=False),
        sa.Column('push_due_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('push_attempts', sa.Integer(), nullable=False),
        sa.Column('push_claim', sa.String(length=36), nullable=True),
        sa.Column('push_claimed_until', sa.DateTime(timezone=True), nullable=True),
        sa.Column('push_device_ids', JSON, nullable=False),
        sa.Column('push_error', sa.String(length=200), nullable=True),
        sa.Column('push_wait', sa.String(length=16), nullable=True),
        sa.Column('pushed_at', sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("push_status IN ('pending','sent','failed','no_device')", name=op.f('ck_notifications_push_status_known')),
        sa.CheckConstraint('push_attempts >= 0', name=op.f('ck_notifications_push_attempts_non_negative')),
        sa.CheckConstraint(
            "push_wait IS NULL OR push_wait IN ('backoff','retry_after','outage','quota')", name=op.f('ck_notifications_push_wait_known')
        ),
        sa.ForeignKeyConstraint(['broadcast_id'], ['broadcasts.id'], name='fk_notifications_broadcast_id_broadcasts', ondelete='SET NULL'),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'], name='fk_notifications_user_id_users', ondelete='CASCADE'),
    ]


def _create_indexes(dedupe_unique):
    op.create_index('ix_notifications_broadcast_id', TABLE, ['broadcast_id'], unique=False)
    op.create_index('ix_notifications_push_due', TABLE, ['push_due_at', sa.text('urgent DESC'), 'id'], unique=False,
                    postgresql_where=sa.text(PENDING))
    op.create_index('ix_notifications_push_outage', TABLE, ['push_due_at'], unique=False,
                    postgresql_where=sa.text(OUTAGE_ROWS))
    op.create_index('ix_notifications_unread', TABLE, ['user_id'], unique=False, postgresql_where=sa.text('read_at IS NULL'))
    op.create_index('ix_notifications_user_id_id', TABLE, ['user_id', 'id'], unique=False)
    if dedupe_unique:
        op.create_unique_constraint('uq_notifications_user_dedupe', TABLE, ['user_id', 'dedupe_key'])
    else:
        op.create_index('ix_notifications_user_dedupe', TABLE, ['user_id', 'dedupe_key'], unique=False)


def _next_month(month):
    return date(month.year + month.month // 12, month.month % 12 + 1, 1)


def _bound(month):
    # With its offset, so the session's TimeZone does not move the bound.
    return f"'{month.year:04d}-{month.month:02d}-01 00:00:00+00'"


def _set_aside(suffix, dedupe):
    """The current notifications renamed aside, with nothing left holding a name the new one takes."""
    op.rename_table(TABLE, ASIDE)
    op.execute(f'ALTER TABLE {ASIDE} RENAME CONSTRAINT pk_notifications TO pk_notifications{suffix}')
    for name in INDEXES:
        op.execute(f'DROP INDEX {name}')
    if dedupe == 'unique':
        op.execute(f'ALTER TABLE {ASIDE} DROP CONSTRAINT uq_notifications_user_dedupe')
    else:
        op.execute('DROP INDEX ix_notifications_user_dedupe')


def _copy_all(source):
    """Every row of ``source`` into the new notifications, ids kept; fails unless the counts agree."""
    op.execute(f'INSERT INTO {TABLE} ({COLUMNS}) SELECT {COLUMNS} FROM {source}')
    bind = op.get_bind()
    before = bind.execute(sa.text(f'SELECT count(*) FROM {source}')).scalar()
    after = bind.execute(sa.text(f'SELECT count(*) FROM {TABLE}')).scalar()
    if before != after:
        raise RuntimeError(f'{source} held {before} notifications, {TABLE} {after}; nothing was changed')


def _partitioned():
    bind = op.get_bind()
    op.execute(f'LOCK TABLE {TABLE} IN ACCESS EXCLUSIVE MODE')
    _set_aside('_unpartitioned', dedupe='unique')
    op.create_table(
        TABLE, *_columns(),
        sa.PrimaryKeyConstraint('id', 'created_at', name='pk_notifications'),
        postgresql_partition_by='RANGE (created_at)',
    )
    op.execute(f'ALTER SEQUENCE notifications_id_seq OWNED BY {TABLE}.id')
    present = bind.execute(sa.text(
        f"SELECT DISTINCT CAST(date_trunc('month', created_at AT TIME ZONE 'UTC') AS date) FROM {ASIDE}"
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
    _create_indexes(dedupe_unique=False)  # on the parent: PostgreSQL makes each partition's
    _copy_all(ASIDE)
    op.drop_table(ASIDE)


def upgrade():
    bind = op.get_bind()
    postgres = bind.dialect.name == 'postgresql'
    if postgres:
        op.execute(f'LOCK TABLE {TABLE}, push_receipts IN ACCESS EXCLUSIVE MODE')
    op.create_table('notification_dedupe',
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('dedupe_key', sa.String(length=120), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'], name='fk_notification_dedupe_user_id_users', ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('user_id', 'dedupe_key', name='pk_notification_dedupe'),
    )
    op.create_index('ix_notification_dedupe_created_at', 'notification_dedupe', ['created_at'], unique=False)
    op.execute(
        'INSERT INTO notification_dedupe (user_id, dedupe_key, created_at) '
        f'SELECT user_id, dedupe_key, created_at FROM {TABLE} WHERE dedupe_key IS NOT NULL'
    )

    with op.batch_alter_table('push_receipts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('notification_created_at', sa.DateTime(timezone=True), nullable=True))
    op.execute(
        'UPDATE push_receipts SET notification_created_at = '
        f'(SELECT n.created_at FROM {TABLE} n WHERE n.id = push_receipts.notification_id)'
    )
    with op.batch_alter_table('push_receipts', schema=None) as batch_op:
        batch_op.alter_column('notification_created_at', existing_type=sa.DateTime(timezone=True), nullable=False)
        batch_op.drop_constraint(RECEIPTS_FK, type_='foreignkey')
        batch_op.create_index('ix_push_receipts_notification_created_at', ['notification_created_at'], unique=False)

    if postgres:
        _partitioned()
        return
    # SQLite: the unique key becomes a plain index. Outside a batch: SQLite's table copy cannot
    # rebuild an index on an expression (ix_notifications_push_due), so it is made again after.
    op.drop_index('ix_notifications_push_due', table_name=TABLE)
    with op.batch_alter_table(TABLE, schema=None) as batch_op:
        batch_op.drop_constraint('uq_notifications_user_dedupe', type_='unique')
        batch_op.create_index('ix_notifications_user_dedupe', ['user_id', 'dedupe_key'], unique=False)
    op.create_index('ix_notifications_push_due', TABLE, ['push_due_at', sa.text('urgent DESC'), 'id'],
                    unique=False, sqlite_where=sa.text(PENDING))


def downgrade():
    bind = op.get_bind()
    postgres = bind.dialect.name == 'postgresql'
    if postgres:
        op.execute(f'LOCK TABLE {TABLE}, push_receipts IN ACCESS EXCLUSIVE MODE')
        _set_aside('_partitioned', dedupe='index')
        op.create_table(TABLE, *_columns(), sa.PrimaryKeyConstraint('id', name='pk_notifications'))
        op.execute(f'ALTER SEQUENCE notifications_id_seq OWNED BY {TABLE}.id')
        _create_indexes(dedupe_unique=True)
        _copy_all(ASIDE)
        op.drop_table(ASIDE)  # with its partitions
    else:
        op.drop_index('ix_notifications_push_due', table_name=TABLE)
        with op.batch_alter_table(TABLE, schema=None) as batch_op:
            batch_op.drop_index('ix_notifications_user_dedupe')
            batch_op.create_unique_constraint('uq_notifications_user_dedupe', ['user_id', 'dedupe_key'])
        op.create_index('ix_notifications_push_due', TABLE, ['push_due_at', sa.text('urgent DESC'), 'id'],
                        unique=False, sqlite_where=sa.text(PENDING))

    # Receipts of notifications retention removed meanwhile cannot stay under the foreign key.
    op.execute(f'DELETE FROM push_receipts WHERE NOT EXISTS (SELECT 1 FROM {TABLE} n WHERE n.id = push_receipts.notification_id)')
    with op.batch_alter_table('push_receipts', schema=None) as batch_op:
        batch_op.drop_index('ix_push_receipts_notification_created_at')
        batch_op.drop_column('notification_created_at')
        batch_op.create_foreign_key(RECEIPTS_FK, TABLE, ['notification_id'], ['id'], ondelete='CASCADE')
    op.drop_index('ix_notification_dedupe_created_at', table_name='notification_dedupe')
    op.drop_table('notification_dedupe')
