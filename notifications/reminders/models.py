"""Reminder settings: a city's own offsets, when it set them (else REMINDER_OFFSETS_MINUTES)."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from core.audit import JSONType
from core.db import UTCDateTime, utcnow
from core.extensions import Model


class CityReminderSettings(Model):
    """How long before an assigned shift its volunteers are reminded, per city (default 24 h and 1 h)."""

    __tablename__ = "city_reminder_settings"

    area_id: Mapped[int] = mapped_column(sa.ForeignKey("areas.id", ondelete="CASCADE"), primary_key=True)
    offsets_minutes: Mapped[list[int]] = mapped_column(JSONType)
    updated_by: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
