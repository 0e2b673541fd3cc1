"""A patrol: what the phone proved about one assignment (check-in, check-out, served minutes).

One row per assignment, made by whichever of the phone's events arrives first: phones queue events
offline and deliver them late and out of order, so a check-out, a track batch or a scan may well
come before its check-in. Feature tables live with their features: track points in
``patrols/tracks/models.py``, checkpoints and scans in ``patrols/checkpoints/models.py``, reports in
``patrols/reports/models.py``.
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
from shifts.models import Assignment


class PresenceStatus(StrEnum):
    VERIFIED = "verified"  # inside the grid, plausible accuracy and clock
    NEEDS_REVIEW = "needs_review"  # recorded, waiting for an organiser
    APPROVED = "approved"  # an organiser accepted it
    REJECTED = "rejected"  # an organiser refused it (with a reason)


#: Presence that counts for served time, rewards and reports.
COUNTED_PRESENCE = (PresenceStatus.VERIFIED, PresenceStatus.APPROVED)


#: Checked in, not checked out and (below, per dialect) not closed by the task: a patrol open now.
_OPEN = "check_in_client_id IS NOT NULL AND check_out_client_id IS NULL AND auto_closed"


def _no_flags() -> list[str]:
    return []


class Patrol(Model):
    __tablename__ = "patrols"

    id: Mapped[int] = mapped_column(primary_key=True)
    assignment_id: Mapped[int] = mapped_column(
        sa.ForeignKey("shift_assignments.id", ondelete="CASCADE"), unique=True
    )
    volunteer_id: Mapped[int] = mapped_column(
        sa.ForeignKey("volunteers.id", ondelete="RESTRICT"), index=True
    )
    shift_id: Mapped[int] = mapped_column(sa.ForeignKey("shifts.id", ondelete="CASCADE"), index=True)

    # Check-in: the client's UUID, the device's clock, our receipt time, the position as reported.
    check_in_client_id: Mapped[str | None] = mapped_column(sa.String(36), unique=True)
    check_in_device_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    check_in_received_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    check_in_lat: Mapped[float | None] = mapped_column(sa.Float)
    check_in_lon: Mapped[float | None] = mapped_column(sa.Float)
    check_in_accuracy_m: Mapped[float | None] = mapped_column(sa.Float)
    # Why presence needs review: outside_grid, poor_accuracy, clock_skew, device_time_future,
    # mock_location, ...; empty when verified.
    check_in_flags: Mapped[list[str]] = mapped_column(JSONType, default=_no_flags)
    presence_status: Mapped[str | None] = mapped_column(sa.String(16), index=True)
    late_minutes: Mapped[int | None] = mapped_column(sa.Integer)

    check_out_client_id: Mapped[str | None] = mapped_column(sa.String(36), unique=True)
    check_out_device_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    check_out_received_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    check_out_lat: Mapped[float | None] = mapped_column(sa.Float)
    check_out_lon: Mapped[float | None] = mapped_column(sa.Float)
    check_out_accuracy_m: Mapped[float | None] = mapped_column(sa.Float)
    check_out_flags: Mapped[list[str]] = mapped_column(JSONType, default=_no_flags)
    # Closed by the periodic task at end + grace because no check-out came.
    auto_closed: Mapped[bool] = mapped_column(sa.Boolean, default=False)

    # Minutes inside the shift window (plus grace) between check-in and check-out; set once both are
    # known and presence counts.
    served_minutes: Mapped[int | None] = mapped_column(sa.Integer)
    reviewed_by: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    reviewed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    review_reason: Mapped[str | None] = mapped_column(sa.String(500))

    # Summary kept after track points are purged (PIPL art. 28).
    distance_m: Mapped[float] = mapped_column(sa.Float, default=0.0)
    track_point_count: Mapped[int] = mapped_column(sa.Integer, default=0)
    # What the stored points fold to, so a batch later than them adds only its own points
    # (``patrols/tracks/service.py``): the distance unrounded, the jumps, the last plausible point
    # and the latest device time. NULL implausible count: not known (a new patrol, points deleted),
    # the next upload recounts.
    track_distance_sum_m: Mapped[float | None] = mapped_column(sa.Float)
    track_implausible_count: Mapped[int | None] = mapped_column(sa.Integer)
    track_last_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    track_anchor_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    track_anchor_lat: Mapped[float | None] = mapped_column(sa.Float)
    track_anchor_lon: Mapped[float | None] = mapped_column(sa.Float)
    # When the precise check-in/out positions were cleared (PRESENCE_POSITION_RETENTION_DAYS after
    # the shift, once presence is decided); flags, status and minutes stay.
    positions_purged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    # Loaded on access: the phone's requests already hold the assignment (identity map), and a
    # joined load would drag its shift, grid polygon, volunteer and user into every patrol query.
    assignment: Mapped[Assignment] = relationship(lazy="select")

    __table_args__ = (
        sa.CheckConstraint(
            "presence_status IS NULL OR presence_status IN "
            "('verified','needs_review','approved','rejected')",
            name="presence_status_known",
        ),
        sa.CheckConstraint("served_minutes IS NULL OR served_minutes >= 0", name="served_non_negative"),
        # The patrols open now (checked in, not out, not closed by the task), by volunteer: the SOS
        # reads its raiser's and the volunteers on duty near it among these few, never the years
        # behind. Spelled as the statements spell it (PostgreSQL proves "IS false" from itself only).
        sa.Index(
            "ix_patrols_open",
            "volunteer_id",
            postgresql_where=sa.text(f"{_OPEN} IS false"),
            sqlite_where=sa.text(f"{_OPEN} IS 0"),
        ),
    )

    def flags(self) -> dict[str, Any]:
        return {"check_in": list(self.check_in_flags or []), "check_out": list(self.check_out_flags or [])}
