"""Redemptions: points spent on a catalogue item, and their workflow."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from core.db import UTCDateTime, utcnow
from core.extensions import Model


class RedemptionStatus(StrEnum):
    REQUESTED = "requested"
    APPROVED = "approved"
    FULFILLED = "fulfilled"
    CANCELLED = "cancelled"
    REJECTED = "rejected"


class Redemption(Model):
    __tablename__ = "redemptions"

    id: Mapped[int] = mapped_column(primary_key=True)
    item_id: Mapped[int] = mapped_column(sa.ForeignKey("catalogue_items.id", ondelete="RESTRICT"), index=True)
    volunteer_id: Mapped[int] = mapped_column(sa.ForeignKey("volunteers.id", ondelete="RESTRICT"))
    points: Mapped[int] = mapped_column(sa.Integer)
    status: Mapped[str] = mapped_column(sa.String(16), default=RedemptionStatus.REQUESTED)
    pickup_code: Mapped[str | None] = mapped_column(sa.String(16), unique=True)
    client_id: Mapped[str | None] = mapped_column(sa.String(36), unique=True)
    decided_by: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reason: Mapped[str | None] = mapped_column(sa.String(500))
    fulfilled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    __table_args__ = (
        sa.Index("ix_redemptions_volunteer_item", "volunteer_id", "item_id"),
        sa.CheckConstraint(
            "status IN ('requested','approved','fulfilled','cancelled','rejected')", name="status_known"
        ),
        sa.CheckConstraint("points > 0", name="points_positive"),
    )
