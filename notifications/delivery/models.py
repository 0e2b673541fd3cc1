"""Delivery's own records: the receipts vendors post back, and our daily count per vendor."""

from __future__ import annotations

from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from core.db import BigId, UTCDateTime, utcnow
from core.extensions import Model


class PushReceipt(Model):
    """A vendor's word that a push reached a phone (or failed to), per notification and device."""

    __tablename__ = "push_receipts"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    # No foreign key: on PostgreSQL notifications are partitioned by month, a key into them would
    # have to name (id, created_at), and PostgreSQL then refuses to drop a month's partition until
    # it is detached, which checks every receipt against the month (the pass over it that dropping
    # whole avoids); SQLite would need a second unique index on notifications for it. Instead the
    # receipt carries its notification's created_at (the receipt endpoint copies it), and the
    # notifications' retention deletes a month's receipts before it drops the month
    # (notifications/retention.py). Users are deactivated, never deleted, so no cascade is lost.
    notification_id: Mapped[int] = mapped_column(BigId, index=True)
    notification_created_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    # Found by the token's hash when the receipt names a token; None when it does not (or the
    # device is gone).
    device_id: Mapped[int | None] = mapped_column(sa.ForeignKey("devices.id", ondelete="SET NULL"))
    channel: Mapped[str] = mapped_column(sa.String(16))
    delivered: Mapped[bool] = mapped_column(sa.Boolean)
    status: Mapped[str] = mapped_column(sa.String(32))  # the vendor's own code or word
    vendor_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (
        # A vendor posting the same receipt again changes nothing. NULL device ids are distinct in
        # a unique constraint, so the service checks those itself (see receipts_service.record).
        sa.UniqueConstraint("notification_id", "device_id", "status", name="uq_push_receipts_once"),
    )


class PushQuotaDay(Model):
    """How many pushes went out through one channel on one of its days (the vendor's time zone)."""

    __tablename__ = "push_quota_days"

    channel: Mapped[str] = mapped_column(sa.String(16), primary_key=True)
    day: Mapped[date] = mapped_column(sa.Date, primary_key=True)
    sent: Mapped[int] = mapped_column(sa.Integer, default=0)  # reserved by the runs before they sent
    # What the latest reservation took (RETURNING shows the new count only, not what was added).
    reserved: Mapped[int] = mapped_column(sa.Integer, default=0)
    # The vendor itself answered "quota reached" today: nothing more goes out until the reset,
    # whatever our own count says (vivo lowers the quota of an app that keeps calling).
    exhausted: Mapped[bool] = mapped_column(sa.Boolean, default=False)

    __table_args__ = (sa.CheckConstraint("sent >= 0", name="sent_non_negative"),)
