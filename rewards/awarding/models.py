"""Service records: service time that counts for hours, badges and leaderboards."""

from __future__ import annotations

from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from core.db import BigId, UTCDateTime, utcnow
from core.extensions import Model


class ServiceRecord(Model):
    """Service time that counts for hours, badges and leaderboards: a served patrol or hand-entered."""

    __tablename__ = "service_records"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    volunteer_id: Mapped[int] = mapped_column(sa.ForeignKey("volunteers.id", ondelete="RESTRICT"))
    source_type: Mapped[str] = mapped_column(sa.String(24))  # "patrol" or "manual"
    source_id: Mapped[str] = mapped_column(sa.String(64))
    minutes: Mapped[int] = mapped_column(sa.Integer)
    served_on: Mapped[date] = mapped_column(sa.Date)  # local date in the grid's time zone
    grid_id: Mapped[int | None] = mapped_column(sa.ForeignKey("areas.id", ondelete="SET NULL"))
    # Set when the presence behind it was rejected after review: it no longer counts.
    voided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    note: Mapped[str | None] = mapped_column(sa.String(500))
    created_by: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (
        sa.UniqueConstraint("source_type", "source_id", name="uq_service_records_source"),
        sa.Index("ix_service_records_volunteer_served_on", "volunteer_id", "served_on"),
        sa.Index("ix_service_records_served_on", "served_on"),
        sa.CheckConstraint("minutes > 0 AND minutes <= 1440", name="minutes_sane"),
    )

