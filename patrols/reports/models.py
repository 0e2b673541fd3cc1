"""Reports (事件上报) filed by volunteers, their photos and the history of their handling.

A report carries the four-colour warning level (四色预警). Red and orange go to the organisers of the
grid's subtree at once (a signal); organisers then acknowledge, assign, escalate to the district or
resolve, and every step is a :class:`ReportEvent`. Phones file reports offline and retry, so the
report and each photo carry a client-generated UUID (unique): a retry finds the first one.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.audit import JSONType
from core.db import UTCDateTime, utcnow
from core.extensions import Model
from grids.models import Area
from volunteers.models import Volunteer


class ReportCategory(StrEnum):
    DISPUTE = "dispute"  # 矛盾纠纷
    SAFETY_HAZARD = "safety_hazard"  # 安全隐患
    SUSPICIOUS_ACTIVITY = "suspicious_activity"
    HELP_NEEDED = "help_needed"
    OTHER = "other"


class ReportLevel(StrEnum):
    """The four-colour warning, most severe first."""

    RED = "red"
    ORANGE = "orange"
    YELLOW = "yellow"
    GREEN = "green"


#: Levels that go to the organisers of the grid's subtree at once.
URGENT_LEVELS = (ReportLevel.RED, ReportLevel.ORANGE)


class ReportStatus(StrEnum):
    OPEN = "open"  # filed, nobody has looked at it yet
    ACKNOWLEDGED = "acknowledged"
    ASSIGNED = "assigned"  # someone is handling it
    ESCALATED = "escalated"  # handed to the district (大事全网联动)
    RESOLVED = "resolved"  # closed with a note; final


class ReportAction(StrEnum):
    FILED = "filed"
    ACKNOWLEDGED = "acknowledged"
    ASSIGNED = "assigned"
    ESCALATED = "escalated"
    RESOLVED = "resolved"


#: At most this many photos per report (the issue's rule; also a CHECK constraint).
MAX_PHOTOS = 6


def _no_flags() -> list[str]:
    return []


def _in(column: str, values: type[StrEnum]) -> str:
    return f"{column} IN (" + ",".join(f"'{value.value}'" for value in values) + ")"


class Report(Model):
    __tablename__ = "patrol_reports"

    id: Mapped[int] = mapped_column(primary_key=True)
    # The phone's UUID for this report: a retry returns the first report instead of a second one.
    client_id: Mapped[str] = mapped_column(sa.String(36), unique=True)
    volunteer_id: Mapped[int] = mapped_column(
        sa.ForeignKey("volunteers.id", ondelete="RESTRICT"), index=True
    )
    grid_id: Mapped[int] = mapped_column(sa.ForeignKey("areas.id", ondelete="RESTRICT"), index=True)
    # The volunteer's own assignment when the report was made on patrol.
    assignment_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("shift_assignments.id", ondelete="SET NULL"), index=True
    )
    category: Mapped[str] = mapped_column(sa.String(32))
    level: Mapped[str] = mapped_column(sa.String(8), index=True)
    status: Mapped[str] = mapped_column(sa.String(16), default=ReportStatus.OPEN, index=True)
    description: Mapped[str] = mapped_column(sa.Text)
    lat: Mapped[float] = mapped_column(sa.Float)
    lon: Mapped[float] = mapped_column(sa.Float)
    accuracy_m: Mapped[float | None] = mapped_column(sa.Float)
    device_at: Mapped[datetime] = mapped_column(UTCDateTime)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    # e.g. device_time_future; kept for the organiser, never a reason to drop the report.
    flags: Mapped[list[str]] = mapped_column(JSONType, default=_no_flags)
    # Changed only by a conditional UPDATE (photo_count < MAX_PHOTOS): concurrent uploads never pass 6.
    photo_count: Mapped[int] = mapped_column(sa.SmallInteger, default=0)
    assignee_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    escalated_to_id: Mapped[int | None] = mapped_column(sa.ForeignKey("areas.id", ondelete="SET NULL"))
    resolution_note: Mapped[str | None] = mapped_column(sa.String(2000))
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    # Loaded on demand: lists choose their own columns (a grid's polygon can be tens of kilobytes).
    volunteer: Mapped[Volunteer] = relationship(lazy="select")
    grid: Mapped[Area] = relationship(foreign_keys=[grid_id], lazy="select")
    photos: Mapped[list[ReportPhoto]] = relationship(
        back_populates="report", lazy="selectin", order_by="ReportPhoto.position"
    )
    events: Mapped[list[ReportEvent]] = relationship(
        lazy="select", order_by="ReportEvent.id", cascade="all, delete-orphan"
    )

    __table_args__ = (
        sa.CheckConstraint(_in("category", ReportCategory), name="category_known"),
        sa.CheckConstraint(_in("level", ReportLevel), name="level_known"),
        sa.CheckConstraint(_in("status", ReportStatus), name="status_known"),
        sa.CheckConstraint(f"photo_count BETWEEN 0 AND {MAX_PHOTOS}", name="photo_count_bounded"),
        sa.Index("ix_patrol_reports_volunteer_id_id", "volunteer_id", "id"),
    )


class ReportPhoto(Model):
    __tablename__ = "patrol_report_photos"

    id: Mapped[int] = mapped_column(primary_key=True)
    report_id: Mapped[int] = mapped_column(
        sa.ForeignKey("patrol_reports.id", ondelete="CASCADE"), index=True
    )
    # The phone's UUID for this photo: each upload is retried on its own.
    client_id: Mapped[str] = mapped_column(sa.String(36), unique=True)
    # 1..MAX_PHOTOS, the report's photo_count after the conditional UPDATE that made room for it.
    position: Mapped[int] = mapped_column(sa.SmallInteger)
    storage_key: Mapped[str] = mapped_column(sa.String(255), unique=True)
    content_type: Mapped[str] = mapped_column(sa.String(32))
    width: Mapped[int] = mapped_column(sa.Integer)
    height: Mapped[int] = mapped_column(sa.Integer)
    size_bytes: Mapped[int] = mapped_column(sa.Integer)
    sha256: Mapped[str] = mapped_column(sa.String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    report: Mapped[Report] = relationship(back_populates="photos")

    __table_args__ = (
        sa.UniqueConstraint("report_id", "position", name="uq_patrol_report_photos_report_position"),
        sa.CheckConstraint("content_type IN ('image/jpeg','image/png')", name="content_type_known"),
    )


class ReportEvent(Model):
    """One step in a report's handling: filed, acknowledged, assigned, escalated, resolved."""

    __tablename__ = "patrol_report_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    report_id: Mapped[int] = mapped_column(
        sa.ForeignKey("patrol_reports.id", ondelete="CASCADE"), index=True
    )
    action: Mapped[str] = mapped_column(sa.String(16))
    from_status: Mapped[str | None] = mapped_column(sa.String(16))
    to_status: Mapped[str] = mapped_column(sa.String(16))
    actor_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    assignee_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    note: Mapped[str | None] = mapped_column(sa.String(2000))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (sa.CheckConstraint(_in("action", ReportAction), name="action_known"),)
