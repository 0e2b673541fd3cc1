"""Point rules: a city's versions, each in force from its effective date (a change is a new version)."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from core.audit import JSONType
from core.db import UTCDateTime, utcnow
from core.extensions import Model


class PointRule(Model):
    """A city's point rules from ``effective_from`` on; a change is a new version, never an edit."""

    __tablename__ = "point_rules"

    id: Mapped[int] = mapped_column(primary_key=True)
    city_id: Mapped[int] = mapped_column(sa.ForeignKey("areas.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(sa.Integer)
    effective_from: Mapped[datetime] = mapped_column(UTCDateTime)
    points_per_hour: Mapped[int] = mapped_column(sa.Integer)
    # Served time counts in whole units of this many minutes (15: 50 minutes count as 45).
    rounding_minutes: Mapped[int] = mapped_column(sa.Integer, default=15)
    # {"red": 20, "orange": 10, "yellow": 5, "green": 2}
    report_bonus: Mapped[dict[str, int]] = mapped_column(JSONType, default=dict)
    daily_cap: Mapped[int | None] = mapped_column(sa.Integer)  # points per volunteer and local day
    streak_days: Mapped[int | None] = mapped_column(sa.Integer)
    streak_bonus: Mapped[int] = mapped_column(sa.Integer, default=0)
    # Points earned in year Y expire at the end of year Y + expiry_years (1: "end of the following
    # year"); None: never.
    expiry_years: Mapped[int | None] = mapped_column(sa.Integer)
    manual_hours_earn_points: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    created_by: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (
        sa.UniqueConstraint("city_id", "version", name="uq_point_rules_city_version"),
        sa.Index("ix_point_rules_city_effective", "city_id", "effective_from"),
        sa.CheckConstraint("points_per_hour >= 0 AND points_per_hour <= 1000", name="points_per_hour_sane"),
        sa.CheckConstraint("rounding_minutes BETWEEN 1 AND 240", name="rounding_sane"),
        sa.CheckConstraint("daily_cap IS NULL OR daily_cap > 0", name="daily_cap_positive"),
    )
