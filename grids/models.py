"""Areas of the tree in one table; grids are the leaves and carry a boundary polygon.

``path`` is the materialised path of ids (``/1/4/17/``), so "is X inside Y's subtree" is the prefix
test ``x.path LIKE y.path || '%'`` and a subtree query is one indexed range scan.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.audit import JSONType
from core.db import UTCDateTime, utcnow
from core.extensions import Model


class AreaLevel(StrEnum):
    CITY = "city"
    DISTRICT = "district"
    SUBDISTRICT = "subdistrict"
    COMMUNITY = "community"
    GRID = "grid"


#: The level a child of each level must have.
CHILD_LEVEL = {
    AreaLevel.CITY: AreaLevel.DISTRICT,
    AreaLevel.DISTRICT: AreaLevel.SUBDISTRICT,
    AreaLevel.SUBDISTRICT: AreaLevel.COMMUNITY,
    AreaLevel.COMMUNITY: AreaLevel.GRID,
}


class GridKind(StrEnum):
    URBAN = "urban"
    RURAL = "rural"
    PASTORAL = "pastoral"
    FOREST = "forest"
    FARM = "farm"
    BORDER = "border"
    OTHER = "other"


class Area(Model):
    __tablename__ = "areas"

    id: Mapped[int] = mapped_column(primary_key=True)
    parent_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("areas.id", ondelete="RESTRICT"), index=True
    )
    level: Mapped[str] = mapped_column(sa.String(16))
    code: Mapped[str] = mapped_column(sa.String(32), unique=True)
    name: Mapped[str] = mapped_column(sa.String(100), index=True)
    timezone: Mapped[str] = mapped_column(sa.String(64), default="Asia/Shanghai")
    # Materialised path of ids, e.g. "/1/4/17/"; String with a C-collation-safe prefix index.
    path: Mapped[str] = mapped_column(sa.String(255), unique=True)
    depth: Mapped[int] = mapped_column(sa.SmallInteger)

    # Grid-only attributes
    grid_kind: Mapped[str | None] = mapped_column(sa.String(16))
    households: Mapped[int | None] = mapped_column(sa.Integer)
    boundary: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    # Bounding box of the boundary, the prefilter for "which grid contains this point".
    min_lon: Mapped[float | None] = mapped_column(sa.Float)
    min_lat: Mapped[float | None] = mapped_column(sa.Float)
    max_lon: Mapped[float | None] = mapped_column(sa.Float)
    max_lat: Mapped[float | None] = mapped_column(sa.Float)

    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    # Bumped on every boundary change; keys the in-process cache of prepared polygons.
    version: Mapped[int] = mapped_column(sa.Integer, default=1)

    parent: Mapped[Area | None] = relationship(remote_side=[id], lazy="joined", innerjoin=False)

    __table_args__ = (
        sa.CheckConstraint(
            "level IN ('city','district','subdistrict','community','grid')", name="level_known"
        ),
        sa.CheckConstraint("households IS NULL OR households >= 0", name="households_non_negative"),
        sa.Index("ix_areas_bbox", "min_lat", "max_lat", "min_lon", "max_lon"),
        sa.Index("ix_areas_level_path", "level", "path"),
        # LIKE 'prefix%' needs a pattern index on PostgreSQL unless the database collation is C.
        sa.Index("ix_areas_path_pattern", "path", postgresql_ops={"path": "varchar_pattern_ops"}),
    )

    @property
    def is_grid(self) -> bool:
        return self.level == AreaLevel.GRID


#: Most active volunteers of one kind a grid's quota may ask for.
MAX_QUOTA = 100
#: Largest weekly patrol target: a hundred people round the clock, in minutes.
MAX_WEEKLY_TARGET_MINUTES = 100 * 7 * 24 * 60


class GridQuota(Model):
    """How many *active* volunteers of a kind a grid should have at home (e.g. 1–2 alley stewards
    小巷管家 per grid, one volunteer police 义警). One row per grid and kind; no row, no quota.

    The kind is named by its code: kinds belong to ``volunteers``, above grids, so grids keeps the
    code (stable, never edited) with a foreign key to it and imports nothing from there.
    """

    __tablename__ = "grid_quotas"

    grid_id: Mapped[int] = mapped_column(
        sa.ForeignKey("areas.id", ondelete="CASCADE"), primary_key=True
    )
    kind_code: Mapped[str] = mapped_column(
        sa.String(32), sa.ForeignKey("volunteer_kinds.code", ondelete="RESTRICT"), primary_key=True
    )
    min_active: Mapped[int] = mapped_column(sa.SmallInteger)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    __table_args__ = (
        sa.CheckConstraint(f"min_active BETWEEN 1 AND {MAX_QUOTA}", name="min_active_range"),
    )


class GridPatrolTarget(Model):
    """A grid's weekly patrol target in person-minutes (what its organiser wants patrolled a week,
    whatever shifts exist); the coverage report compares it with the shifts planned."""

    __tablename__ = "grid_patrol_targets"

    grid_id: Mapped[int] = mapped_column(
        sa.ForeignKey("areas.id", ondelete="CASCADE"), primary_key=True
    )
    weekly_target_minutes: Mapped[int] = mapped_column(sa.Integer)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    __table_args__ = (
        sa.CheckConstraint(
            f"weekly_target_minutes BETWEEN 1 AND {MAX_WEEKLY_TARGET_MINUTES}",
            name="weekly_target_range",
        ),
    )
