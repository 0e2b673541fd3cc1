"""notifications.push_wait: why a pending push waits (backoff, retry_after, outage)

Rows held back by an outage of the push service are sent as soon as the service is seen again
(notifications/delivery.py); those the service asked to wait (Retry-After) keep their time.
Existing rows start without a reason: they keep their backoff.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06 11:30:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None

OUTAGE_ROWS = "push_status = 'pending' AND push_wait = 'outage'"


def upgrade():
    with op.batch_alter_table('notifications', schema=None) as batch_op:
        batch_op.add_column(sa.Column('push_wait', sa.String(length=16), nullable=True))
        batch_op.create_check_constraint(
            op.f('ck_notifications_push_wait_known'), "push_wait IS NULL OR push_wait IN ('backoff','retry_after','outage')"
        )
        batch_op.create_index('ix_notifications_push_outage', ['push_due_at'], unique=False,
                              postgresql_where=sa.text(OUTAGE_ROWS), sqlite_where=sa.text(OUTAGE_ROWS))


def downgrade():
    with op.batch_alter_table('notifications', schema=None) as batch_op:
        batch_op.drop_index('ix_notifications_push_outage', postgresql_where=sa.text(OUTAGE_ROWS),
                            sqlite_where=sa.text(OUTAGE_ROWS))
        batch_op.drop_constraint(op.f('ck_notifications_push_wait_known'), type_='check')
        batch_op.drop_column('push_wait')
