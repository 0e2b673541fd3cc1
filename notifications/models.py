"""Notifications: the phones that receive pushes, and the inbox rows that are also the push outbox.

A notification is one row per recipient, written in the same transaction as the change that causes
it (listeners of the domain signals, reminders, broadcasts). The row is the inbox item the user
reads and, through its ``push_*`` columns, the outbox entry a worker delivers after the commit: if
the change rolls back, no notification exists; if it commits, a worker will push it at least once.
The inbox is the record; the push is the doorbell.

On PostgreSQL ``notifications`` is range-partitioned by the month of ``created_at`` (UTC months,
``core/partitions.py``; docs/partitioning.md says why), so retention drops a month whole. Every
unique key of a partitioned table must hold the partition key, so the primary key is
``(id, created_at)`` there, and "once per user and cause" lives in a small unpartitioned table of
its own, :class:`NotificationDedupe`, written before the notification (``notifications/service.py``).
SQLite keeps one plain table and the same dedupe table (one code path).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from core import partitions
from core.audit import JSONType
from core.db import BigId, UTCDateTime, utcnow
from core.extensions import Model


class PushWait(StrEnum):
    """Why a pending row waits for its next try (None: it has not failed)."""

    BACKOFF = "backoff"  # its push failed while others went through: exponential backoff
    RETRY_AFTER = "retry_after"  # the push service asked for the wait (Retry-After): honoured
    OUTAGE = "outage"  # every push of its batch failed: the service was down; due again once it is back
    QUOTA = "quota"  # a vendor's daily cap (theirs or ours) is reached: due at the cap's next reset


class PushStatus(StrEnum):
    PENDING = "pending"  # due at push_due_at (held back until then in quiet hours)
    SENT = "sent"  # accepted by the push service for at least one device
    FAILED = "failed"  # gave up after PUSH_MAX_ATTEMPTS; stays in the inbox
    NO_DEVICE = "no_device"  # the user had no active, fresh device: inbox only


class Notification(Model):
    """One user's inbox item, and the outbox entry its push is delivered from."""

    __tablename__ = "notifications"

    id: Mapped[int] = mapped_column(BigId)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(sa.String(40))
    # Rendered in the user's language when written (zh by default, en).
    title: Mapped[str] = mapped_column(sa.String(200))
    body: Mapped[str] = mapped_column(sa.String(1000))
    # Deep link for the app: {"type": kind, "<thing>_id": …}; string values only in the push.
    data: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    urgent: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    # The cause (reminders: "reminder:<assignment>:<minutes>"). Once per user and cause is kept by
    # NotificationDedupe, written first; here it is what finds a cause's rows (SOS listeners).
    dedupe_key: Mapped[str | None] = mapped_column(sa.String(120))
    broadcast_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("broadcasts.id", ondelete="SET NULL"), index=True
    )
    # The partition key on PostgreSQL; what retention counts from.
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    read_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    # --- the outbox ---
    push_status: Mapped[str] = mapped_column(sa.String(16), default=PushStatus.PENDING)
    # When it may be pushed: now, or the end of the user's quiet hours for a non-urgent one, or
    # the next retry after a transient failure.
    push_due_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    push_attempts: Mapped[int] = mapped_column(sa.Integer, default=0)
    # A worker's lease: it claimed the row until then (a dead worker's rows come back after it).
    push_claim: Mapped[str | None] = mapped_column(sa.String(36))
    push_claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Devices already reached, so a retry goes only to the others.
    push_device_ids: Mapped[list[int]] = mapped_column(JSONType, default=list)
    push_error: Mapped[str | None] = mapped_column(sa.String(200))
    push_wait: Mapped[str | None] = mapped_column(sa.String(16))
    pushed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (
        partitions.primary_key_with("created_at", "id", name="pk_notifications"),
        # Not unique: a partitioned table's unique keys must hold created_at (NotificationDedupe is
        # the key); this finds the rows of a cause per user.
        sa.Index("ix_notifications_user_dedupe", "user_id", "dedupe_key"),
        sa.Index("ix_notifications_user_id_id", "user_id", "id"),
        sa.Index(
            "ix_notifications_unread",
            "user_id",
            postgresql_where=sa.text("read_at IS NULL"),
            sqlite_where=sa.text("read_at IS NULL"),
        ),
        sa.CheckConstraint(
            "push_status IN ('pending','sent','failed','no_device')", name="push_status_known"
        ),
        sa.CheckConstraint("push_attempts >= 0", name="push_attempts_non_negative"),
        sa.CheckConstraint(
            "push_wait IS NULL OR push_wait IN ('backoff','retry_after','outage','quota')", name="push_wait_known"
        ),
        # The rows an outage held back, found at once when the push service is seen again.
        sa.Index(
            "ix_notifications_push_outage",
            "push_due_at",
            postgresql_where=sa.text("push_status = 'pending' AND push_wait = 'outage'"),
            sqlite_where=sa.text("push_status = 'pending' AND push_wait = 'outage'"),
        ),
        partitions.by_month("created_at"),
    )


class NotificationDedupe(Model):
    """"Once per user and cause, whichever writer comes first": a writer inserts the (user, key)
    here first (``ON CONFLICT DO NOTHING``; a second writer waits for the first one's commit and
    then finds the key taken) and writes the notification only for the keys it got. Unpartitioned,
    so the key holds across months. A row goes with its notification's retention (same
    ``created_at``, the notification's): no cause repeats that long after its first notification."""

    __tablename__ = "notification_dedupe"

    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    dedupe_key: Mapped[str] = mapped_column(sa.String(120), primary_key=True)
    # The notification's created_at: retention deletes the keys of the notifications it removes.
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


# The claim's order (due, urgent first, id): with it, a claim stops after its batch; without it, the
# rows of a broadcast, which share one due time, were all read and sorted for every batch. Urgent
# first among rows due together: a quota's reset releases many at once. Declared here because an
# index on a descending column needs the column itself.
sa.Index(
    "ix_notifications_push_due",
    Notification.push_due_at,
    Notification.urgent.desc(),
    Notification.id,
    postgresql_where=sa.text("push_status = 'pending'"),
    sqlite_where=sa.text("push_status = 'pending'"),
)
