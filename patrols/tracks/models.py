"""GPS track points of a patrol.

Track points are sensitive personal information (PIPL art. 28): they are purged
TRACK_RETENTION_DAYS after the shift ends, while the patrol's summary (``Patrol.distance_m``,
``Patrol.track_point_count``) and the checkpoint scans stay.

On PostgreSQL the table is range-partitioned by the month of ``device_at`` (``core/partitions.py``;
why that column: docs/partitioning.md). The primary key is the de-duplication key of uploads,
(patrol, device time), which holds the partition key as PostgreSQL requires. A point has no id of
its own (migration 0025): nothing refers to one point, and a surrogate key cost every point a
sequence call and a second B-tree, about a quarter of PostgreSQL's time for a 1,000-point upload.
Retention drops a month whose every point is due instead of deleting its rows.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from core import partitions
from core.db import UTCDateTime, utcnow
from core.extensions import Model
from patrols.models import Patrol


class TrackPoint(Model):
    __tablename__ = "track_points"

    patrol_id: Mapped[int] = mapped_column(sa.ForeignKey("patrols.id", ondelete="CASCADE"), primary_key=True)
    # The phone's clock when the fix was taken; with patrol_id the de-duplication key of uploads,
    # and the partition key (a fix is accepted only within its shift's window, so a month's
    # partition holds the fixes of that month's shifts).
    device_at: Mapped[datetime] = mapped_column(UTCDateTime, primary_key=True)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    lat: Mapped[float] = mapped_column(sa.Float)
    lon: Mapped[float] = mapped_column(sa.Float)
    accuracy_m: Mapped[float | None] = mapped_column(sa.Float)

    __table_args__ = (
        sa.PrimaryKeyConstraint("patrol_id", "device_at", name="pk_track_points"),
        partitions.by_month("device_at"),
    )


def forget_track_folds(patrol_ids: Any) -> sa.Update:
    """The statement marking the track summaries of ``patrol_ids`` (a list or a subquery) as not
    describing the points stored (``Patrol.track_*``, ``patrols/tracks/service.py``): run it before
    deleting points, so the next upload recounts what is left. Run first, it also locks the patrol
    rows, so an upload in flight either commits before the points go or waits and recounts."""
    return (
        sa.update(Patrol)
        .where(Patrol.id.in_(patrol_ids))
        .values(
            track_distance_sum_m=None, track_implausible_count=None, track_last_at=None,
            track_anchor_at=None, track_anchor_lat=None, track_anchor_lon=None,
        )
        .execution_options(synchronize_session=False)
    )
