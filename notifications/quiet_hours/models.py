"""Quiet hours: a user's own, when they set them (else QUIET_HOURS_START–QUIET_HOURS_END)."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from core.db import UTCDateTime, utcnow
from core.extensions import Model


class NotificationSettings(Model):
    """A user's quiet hours, in their area's time zone (default 22:00–07:00)."""

    __tablename__ = "notification_settings"

    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    quiet_hours_enabled: Mapped[bool] = mapped_column(sa.Boolean, default=True)
    # Minutes after local midnight; start > end spans midnight.
    quiet_start_minute: Mapped[int] = mapped_column(sa.SmallInteger, default=22 * 60)
    quiet_end_minute: Mapped[int] = mapped_column(sa.SmallInteger, default=7 * 60)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    __table_args__ = (
        sa.CheckConstraint(
            "quiet_start_minute BETWEEN 0 AND 1439 AND quiet_end_minute BETWEEN 0 AND 1439",
            name="quiet_minutes_in_day",
        ),
    )
