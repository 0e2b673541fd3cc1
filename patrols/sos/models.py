"""An SOS, its append-only history, who was alerted, and the positions the phone sent while it was open.

An SOS is located where help is needed: on the grid of the shift the volunteer is on, else the grid
of their home city that holds the position, else their home grid (``located_by``). ``area_path`` is
that grid's path, so an organiser's or a staff member's reach is the usual prefix test.
Positions are sensitive personal information: ``lat``/``lon`` of the alert and its
``SosPosition`` rows are purged SOS_POSITION_RETENTION_DAYS after it ended; the alert and its
history stay.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from core.audit import JSONType
from core.db import BigId, UTCDateTime, utcnow
from core.extensions import Model


class SosStatus(StrEnum):
    OPEN = "open"  # raised; nobody has acknowledged it yet
    ACKNOWLEDGED = "acknowledged"  # someone is going or has handled it; open until closed
    CANCELLED = "cancelled"  # the volunteer called it off: a false alarm
    CLOSED = "closed"  # an organiser (or staff) closed it with a note


#: An SOS that still needs someone: a volunteer holds at most one.
LIVE_SOS = (SosStatus.OPEN, SosStatus.ACKNOWLEDGED)


class SosLevel(StrEnum):
    """Who has been alerted so far; escalation moves up one level at a time."""

    COMMUNITY = "community"  # the grid's organisers and the volunteers on duty nearby
    DISTRICT = "district"  # + the district's staff
    CITY = "city"  # + the city's staff


class SosEventKind(StrEnum):
    RAISED = "raised"
    ALERTED = "alerted"  # recipients told (data: user ids and why)
    ACKNOWLEDGED = "acknowledged"  # response: going | handled
    ESCALATED = "escalated"  # level: the new level
    CANCELLED = "cancelled"
    CLOSED = "closed"


class SosResponse(StrEnum):
    GOING = "going"
    HANDLED = "handled"


class SosAlert(Model):
    __tablename__ = "sos_alerts"

    id: Mapped[int] = mapped_column(primary_key=True)
    volunteer_id: Mapped[int] = mapped_column(sa.ForeignKey("volunteers.id", ondelete="RESTRICT"), index=True)
    # The phone's UUID for the alert: the same UUID again is the same SOS.
    client_id: Mapped[str] = mapped_column(sa.String(36), unique=True)
    device_at: Mapped[datetime] = mapped_column(UTCDateTime)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Null once purged (SOS_POSITION_RETENTION_DAYS after the end).
    lat: Mapped[float | None] = mapped_column(sa.Float)
    lon: Mapped[float | None] = mapped_column(sa.Float)
    accuracy_m: Mapped[float | None] = mapped_column(sa.Float)
    note: Mapped[str | None] = mapped_column(sa.String(200))
    # The assignment the volunteer was on duty for, if any.
    assignment_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("shift_assignments.id", ondelete="SET NULL"), index=True
    )
    grid_id: Mapped[int] = mapped_column(sa.ForeignKey("areas.id", ondelete="RESTRICT"), index=True)
    area_path: Mapped[str] = mapped_column(sa.String(255), index=True)
    located_by: Mapped[str] = mapped_column(sa.String(16))  # shift | position | home_grid
    status: Mapped[str] = mapped_column(sa.String(16), default=SosStatus.OPEN)
    level: Mapped[str] = mapped_column(sa.String(16), default=SosLevel.COMMUNITY)
    # When the next escalation is due; null once acknowledged, ended, or at the top level.
    escalate_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ended_by: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    end_note: Mapped[str | None] = mapped_column(sa.String(500))
    positions_purged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    __table_args__ = (
        sa.CheckConstraint(
            "status IN ('open','acknowledged','cancelled','closed')", name="status_known"
        ),
        sa.CheckConstraint("level IN ('community','district','city')", name="level_known"),
        sa.CheckConstraint("located_by IN ('shift','position','home_grid')", name="located_by_known"),
        # One live SOS per volunteer, whatever races: the second insert fails.
        sa.Index(
            "uq_sos_alerts_one_live",
            "volunteer_id",
            unique=True,
            postgresql_where=sa.text("status IN ('open','acknowledged')"),
            sqlite_where=sa.text("status IN ('open','acknowledged')"),
        ),
        # What the escalation task reads.
        sa.Index(
            "ix_sos_alerts_escalate_at",
            "escalate_at",
            postgresql_where=sa.text("escalate_at IS NOT NULL"),
            sqlite_where=sa.text("escalate_at IS NOT NULL"),
        ),
    )


class SosEvent(Model):
    """One step of an SOS; rows are only ever added."""

    __tablename__ = "sos_events"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    sos_id: Mapped[int] = mapped_column(sa.ForeignKey("sos_alerts.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(sa.String(16))
    actor_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))  # None: the task
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    level: Mapped[str | None] = mapped_column(sa.String(16))
    response: Mapped[str | None] = mapped_column(sa.String(16))
    note: Mapped[str | None] = mapped_column(sa.String(500))
    data: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)

    __table_args__ = (
        sa.CheckConstraint(
            "kind IN ('raised','alerted','acknowledged','escalated','cancelled','closed')", name="kind_known"
        ),
        sa.CheckConstraint("response IS NULL OR response IN ('going','handled')", name="response_known"),
    )


class SosRecipient(Model):
    """Someone alerted to an SOS: they may read it and acknowledge it."""

    __tablename__ = "sos_recipients"

    sos_id: Mapped[int] = mapped_column(sa.ForeignKey("sos_alerts.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True)
    # organiser | nearby (a volunteer on duty within SOS_RADIUS_M) | staff (district or city level)
    reason: Mapped[str] = mapped_column(sa.String(16))
    level: Mapped[str] = mapped_column(sa.String(16))
    alerted_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (
        sa.CheckConstraint("reason IN ('organiser','nearby','staff')", name="reason_known"),
    )


class SosPosition(Model):
    """A position the phone sent while the SOS was open (more often than the track rate)."""

    __tablename__ = "sos_positions"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    sos_id: Mapped[int] = mapped_column(sa.ForeignKey("sos_alerts.id", ondelete="CASCADE"))
    device_at: Mapped[datetime] = mapped_column(UTCDateTime)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    lat: Mapped[float] = mapped_column(sa.Float)
    lon: Mapped[float] = mapped_column(sa.Float)
    accuracy_m: Mapped[float | None] = mapped_column(sa.Float)

    __table_args__ = (sa.UniqueConstraint("sos_id", "device_at", name="uq_sos_positions_sos_id_device_at"),)
