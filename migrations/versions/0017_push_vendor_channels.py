"""notifications: vendor push channels — receipts, daily quota counters, a phone's installation id

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-07

"""
from alembic import op
import sqlalchemy as sa

# revision identifiers, used by Alembic.
revision = '0017'
down_revision = '0016'
branch_labels = None
depends_on = None

WAITS_BEFORE = "push_wait IS NULL OR push_wait IN ('backoff','retry_after','outage')"
PENDING = "push_status = 'pending'"
WAITS_AFTER = "push_wait IS NULL OR push_wait IN ('backoff','retry_after','outage','quota')"


def upgrade():
    op.create_table('push_receipts',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('notification_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('device_id', sa.Integer(), nullable=True),
    sa.Column('channel', sa.String(length=16), nullable=False),
    sa.Column('delivered', sa.Boolean(), nullable=False),
    sa.Column('status', sa.String(length=32), nullable=False),
    sa.Column('vendor_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['device_id'], ['devices.id'], name=op.f('fk_push_receipts_device_id_devices'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['notification_id'], ['notifications.id'], name=op.f('fk_push_receipts_notification_id_notifications'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_push_receipts')),
    sa.UniqueConstraint('notification_id', 'device_id', 'status', name='uq_push_receipts_once')
    )
    with op.batch_alter_table('push_receipts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_push_receipts_notification_id'), ['notification_id'], unique=False)

    op.create_table('push_quota_days',
    sa.Column('channel', sa.String(length=16), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('sent', sa.Integer(), nullable=False),
    sa.Column('reserved', sa.Integer(), nullable=False),
    sa.Column('exhausted', sa.Boolean(), nullable=False),
    sa.CheckConstraint('sent >= 0', name=op.f('ck_push_quota_days_sent_non_negative')),
    sa.PrimaryKeyConstraint('channel', 'day', name=op.f('pk_push_quota_days'))
    )
    with op.batch_alter_table('devices', schema=None) as batch_op:
        batch_op.add_column(sa.Column('installation_id', sa.String(length=64), nullable=True))
    with op.batch_alter_table('notifications', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_notifications_push_wait_known'), type_='check')
        batch_op.create_check_constraint(op.f('ck_notifications_push_wait_known'), WAITS_AFTER)
    # The claim orders (due, urgent first, id): after a quota's reset the urgent rows go first.
    # Outside the batch: SQLite's table copy cannot rebuild an index on an expression.
    op.drop_index('ix_notifications_push_due', table_name='notifications')
    op.create_index('ix_notifications_push_due', 'notifications', ['push_due_at', sa.text('urgent DESC'), 'id'],
                    unique=False, postgresql_where=sa.text(PENDING), sqlite_where=sa.text(PENDING))


def downgrade():
    # Rows waiting on a quota wait on a plain backoff instead (due at the same time).
    op.execute("UPDATE notifications SET push_wait = 'backoff' WHERE push_wait = 'quota'")
    op.drop_index('ix_notifications_push_due', table_name='notifications')
    op.create_index('ix_notifications_push_due', 'notifications', ['push_due_at', 'id'], unique=False,
                    postgresql_where=sa.text(PENDING), sqlite_where=sa.text(PENDING))
    with op.batch_alter_table('notifications', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_notifications_push_wait_known'), type_='check')
        batch_op.create_check_constraint(op.f('ck_notifications_push_wait_known'), WAITS_BEFORE)
    with op.batch_alter_table('devices', schema=None) as batch_op:
        batch_op.drop_column('installation_id')
    op.drop_table('push_quota_days')
    with op.batch_alter_table('push_receipts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_push_receipts_notification_id'))
    op.drop_table('push_receipts')
