"""GPS track points of a patrol.

Track points are sensitive personal information (PIPL art. 28): they are purged
TRACK_RETENTION_DAYS after the shift ends, while the patrol's summary (``Patrol.distance_m``,
``Patrol.track_point_count``) and the checkpoint scans stay.

On PostgreSQL the table is range-partitioned by the month of ``device_at`` (``core/partitions.py``;
why that column: docs/partitioning.md). It is the column of the de-duplication key, so the key
stays (patrol, device time) and holds the partition key as PostgreSQL requires; the primary key
becomes (id, device_at). Retention drops a month whose every point is due instead of deleting its rows.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from core import partitions
from core.db import UTCDateTime, utcnow
from core.extensions import Model

# A patrol may hold tens of thousands of points; SQLite autoincrements only a plain INTEGER key.
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


class TrackPoint(Model):
    __tablename__ = "track_points"

    id: Mapped[int] = mapped_column(BigId)
    patrol_id: Mapped[int] = mapped_column(sa.ForeignKey("patrols.id", ondelete="CASCADE"))
    # The phone's clock when the fix was taken; with patrol_id the de-duplication key of uploads,
    # and the partition key (a fix is accepted only within its shift's window, so a month's
    # partition holds the fixes of that month's shifts).
    device_at: Mapped[datetime] = mapped_column(UTCDateTime)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    lat: Mapped[float] = mapped_column(sa.Float)
    lon: Mapped[float] = mapped_column(sa.Float)
    accuracy_m: Mapped[float | None] = mapped_column(sa.Float)

    __table_args__ = (
        partitions.primary_key_with("device_at", "id", name="pk_track_points"),
        sa.UniqueConstraint("patrol_id", "device_at", name="uq_track_points_patrol_id_device_at"),
        partitions.by_month("device_at"),
    )
