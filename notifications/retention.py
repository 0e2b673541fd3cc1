"""Notification retention: the inbox keeps NOTIFICATION_RETENTION_DAYS (default 180) of history.

A notification is due once its ``created_at`` is older than the cutoff (now − the retention),
read or not, urgent or not: after half a year an unread alert tells nobody anything, and what it
was about (an SOS, an incident, a shift) keeps its own record in its own package. What hangs on a
notification goes with it: its push receipts (``push_receipts``, no foreign key into the
partitioned table, see ``notifications/delivery/models.py``) and its dedupe key
(``notification_dedupe``, same ``created_at``: no cause repeats half a year after its first
notification, so the key is not needed any longer than the row).

PostgreSQL: ``notifications`` is partitioned by the month of ``created_at``, so a month that ends
at or before the cutoff is wholly due and is dropped whole (``core.partitions.drop_months_before``;
its receipts and keys are deleted first, by their ``created_at`` indexes, in the same transaction).
What is only partly due (the cutoff's own month) and the default partition go row by row, in
committed batches, as on SQLite. A cutoff is strict: a row created exactly at it stays one more run.
No HTTP; the periodic task ``notifications.enforce_retention`` runs it.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa
from flask import current_app

from core import partitions
from core.db import rowcount, utcnow
from core.extensions import db
from core.transactions import commit_batch
from notifications.delivery.models import PushReceipt
from notifications.models import Notification, NotificationDedupe

#: Notifications deleted per batch (row by row: partly due months, the default partition, SQLite).
BATCH = 1000


def retention_cutoff(now: datetime | None = None) -> datetime:
    """Notifications created before this instant are due."""
    return (now or utcnow()) - timedelta(days=int(current_app.config["NOTIFICATION_RETENTION_DAYS"]))


def enforce_retention(now: datetime | None = None) -> dict[str, int]:
    """Drop the wholly due months (PostgreSQL), then delete the rest that is due; how much of each."""
    before = retention_cutoff(now)
    dropped = partitions.drop_months_before(Notification.__tablename__, before, before_drop=_forget_month)
    return {"notification_partitions_dropped": len(dropped), "notifications": purge_notifications(before)}


def _forget_month(partition: partitions.Partition) -> None:
    """A month's receipts and dedupe keys, before the month itself is dropped (same transaction)."""
    assert partition.lower is not None and partition.upper is not None
    db.session.execute(
        sa.delete(PushReceipt).where(
            PushReceipt.notification_created_at >= partition.lower, PushReceipt.notification_created_at < partition.upper
        )
    )
    db.session.execute(
        sa.delete(NotificationDedupe).where(
            NotificationDedupe.created_at >= partition.lower, NotificationDedupe.created_at < partition.upper
        )
    )


def purge_notifications(before: datetime, *, batch_size: int = BATCH) -> int:
    """Delete the notifications created before ``before``, with their receipts and dedupe keys, in
    committed batches (oldest first, through ``created_at``: partition pruning on PostgreSQL);
    returns how many. Each batch reads again what is due, so a crash or two runs at once delete
    nothing twice."""
    deleted = 0
    while True:
        due = db.session.execute(
            sa.select(Notification.id, Notification.created_at, Notification.user_id, Notification.dedupe_key)
            .where(Notification.created_at < before)
            .order_by(Notification.created_at)
            .limit(batch_size)
        ).all()
        if not due:
            return deleted
        first, last = due[0].created_at, due[-1].created_at
        pairs = [(row.id, row.created_at) for row in due]
        db.session.execute(
            sa.delete(PushReceipt).where(
                PushReceipt.notification_id.in_([row.id for row in due]),
                PushReceipt.notification_created_at < before,
            )
        )
        keys = [(row.user_id, row.dedupe_key) for row in due if row.dedupe_key is not None]
        if keys:
            db.session.execute(
                sa.delete(NotificationDedupe).where(sa.tuple_(NotificationDedupe.user_id, NotificationDedupe.dedupe_key).in_(keys))
            )
        result = db.session.execute(
            sa.delete(Notification)
            .where(
                sa.tuple_(Notification.id, Notification.created_at).in_(pairs),
                # Bounds the months probed on PostgreSQL (pruning), besides the pairs.
                Notification.created_at >= first,
                Notification.created_at <= last,
            )
            .execution_options(synchronize_session=False)
        )
        deleted += rowcount(result)
        commit_batch()
        if len(due) < batch_size:
            return deleted
