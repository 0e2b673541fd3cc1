"""Catalogue items: what the volunteers of a subtree can redeem points for."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from core.db import UTCDateTime, utcnow
from core.extensions import Model


class CatalogueItem(Model):
    """Something volunteers of a subtree can redeem points for."""

    __tablename__ = "catalogue_items"

    id: Mapped[int] = mapped_column(primary_key=True)
    area_id: Mapped[int] = mapped_column(sa.ForeignKey("areas.id", ondelete="RESTRICT"), index=True)
    name: Mapped[str] = mapped_column(sa.String(100))
    description: Mapped[str] = mapped_column(sa.String(2000), default="")
    points_cost: Mapped[int] = mapped_column(sa.Integer)
    stock: Mapped[int] = mapped_column(sa.Integer)
    per_volunteer_limit: Mapped[int | None] = mapped_column(sa.Integer)
    valid_from: Mapped[datetime | None] = mapped_column(UTCDateTime)
    valid_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    photo_key: Mapped[str | None] = mapped_column(sa.String(200))
    active: Mapped[bool] = mapped_column(sa.Boolean, default=True)
    created_by: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    __table_args__ = (
        sa.CheckConstraint("points_cost > 0 AND points_cost <= 1000000", name="cost_sane"),
        sa.CheckConstraint("stock >= 0", name="stock_non_negative"),
        sa.CheckConstraint("per_volunteer_limit IS NULL OR per_volunteer_limit > 0", name="limit_positive"),
    )

