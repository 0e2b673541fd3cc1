"""Patrol shifts, their repeating series and assignments (primary, backup, waitlist): the tables every
feature of the package shares. Swaps and calendar feeds keep theirs (``shifts/swaps/models.py``,
``shifts/calendar/models.py``).

Headcount is kept on the shift row (``primary_count``, ``backup_count``) and changes only by a
conditional UPDATE, with CHECK constraints as the last line of defence, so concurrent sign-ups can
never overbook (DESIGN.md, data rules). ``queue_seq`` is bumped by every sign-up: the bump takes the
shift's row lock on PostgreSQL (SQLite serialises writers anyway) and its value orders the waitlist
and the backups.
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
from grids.models import Area
from volunteers.models import Volunteer


class ShiftStatus(StrEnum):
    SCHEDULED = "scheduled"
    CANCELLED = "cancelled"


class SeriesStatus(StrEnum):
    ACTIVE = "active"
    ENDED = "ended"  # cut short by "this and following" or cancelled as a whole


class AssignmentStatus(StrEnum):
    INVITED = "invited"  # an organiser's invitation, not yet answered; holds no place
    ASSIGNED = "assigned"  # holds a primary or backup place
    WAITLISTED = "waitlisted"  # waits for a primary place, in queue_seq order
    DECLINED = "declined"  # the invitation was declined
    WITHDRAWN = "withdrawn"  # the volunteer left (late_withdrawal marks the ones after the cut-off)
    REMOVED = "removed"  # an organiser took the volunteer off
    CANCELLED = "cancelled"  # the shift was cancelled
    SWAPPED = "swapped"  # handed over to another volunteer by an approved swap
    ABSENT = "absent"  # marked as a no-show (patrols)


#: Statuses in which an assignment still counts: one live row per volunteer and shift.
LIVE_STATUSES = (AssignmentStatus.INVITED, AssignmentStatus.ASSIGNED, AssignmentStatus.WAITLISTED)


class AssignmentRole(StrEnum):
    PRIMARY = "primary"
    BACKUP = "backup"  # AB岗: promoted in queue_seq order when a primary drops out


class AssignmentSource(StrEnum):
    SIGNUP = "signup"
    ORGANISER = "organiser"
    INVITATION = "invitation"
    AUTOFILL = "autofill"
    SWAP = "swap"


def _required_kinds_default() -> list[dict[str, Any]]:
    return []


class ShiftTemplate:
    """What a shift and the series it comes from share: texts, places and required kinds."""

    title: Mapped[str] = mapped_column(sa.String(100))
    instructions: Mapped[str | None] = mapped_column(sa.Text)
    meeting_point: Mapped[str | None] = mapped_column(sa.String(200))
    min_headcount: Mapped[int] = mapped_column(sa.SmallInteger)
    max_headcount: Mapped[int] = mapped_column(sa.SmallInteger)
    backup_slots: Mapped[int] = mapped_column(sa.SmallInteger, default=0)
    # [{"kind": "volunteer_police", "minimum": 1}, ...]
    required_kinds: Mapped[list[dict[str, Any]]] = mapped_column(
        JSONType, default=_required_kinds_default
    )


def _template_checks() -> tuple[sa.CheckConstraint, ...]:
    return (
        sa.CheckConstraint(
            "min_headcount >= 0 AND max_headcount >= 1 AND min_headcount <= max_headcount",
            name="headcount_range",
        ),
        sa.CheckConstraint("backup_slots >= 0", name="backup_slots_non_negative"),
    )


class ShiftSeries(ShiftTemplate, Model):
    """A weekly repeat rule and the template its occurrences are made from.

    ``rrule`` is the normalised RFC 5545 rule without DTSTART; ``first_start_local`` is the naive
    wall-clock start of the first occurrence in ``timezone``. Occurrences exist as ``Shift`` rows up to
    ``expanded_until``, which a periodic task moves forward to the planning horizon.
    """

    __tablename__ = "shift_series"

    id: Mapped[int] = mapped_column(primary_key=True)
    grid_id: Mapped[int] = mapped_column(sa.ForeignKey("areas.id", ondelete="RESTRICT"), index=True)
    status: Mapped[str] = mapped_column(sa.String(16), default=SeriesStatus.ACTIVE, index=True)
    timezone: Mapped[str] = mapped_column(sa.String(64))
    rrule: Mapped[str] = mapped_column(sa.String(500))
    first_start_local: Mapped[datetime] = mapped_column(sa.DateTime(timezone=False))
    duration_minutes: Mapped[int] = mapped_column(sa.Integer)
    # Occurrences starting before this instant exist as shifts; null until first expanded.
    expanded_until: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    created_by: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    grid: Mapped[Area] = relationship(lazy="joined")

    __table_args__ = (
        sa.CheckConstraint("status IN ('active','ended')", name="status_known"),
        sa.CheckConstraint("duration_minutes > 0", name="duration_positive"),
        *_template_checks(),
    )


class Shift(ShiftTemplate, Model):
    __tablename__ = "shifts"

    id: Mapped[int] = mapped_column(primary_key=True)
    grid_id: Mapped[int] = mapped_column(sa.ForeignKey("areas.id", ondelete="RESTRICT"))
    series_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("shift_series.id", ondelete="SET NULL"), index=True
    )
    # The occurrence of the series this shift stands for (its original local start), kept when the
    # shift is moved, so expanding the series again never duplicates it.
    occurrence_local: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=False))
    # Edited on its own: later whole-series edits leave it alone.
    detached: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    status: Mapped[str] = mapped_column(sa.String(16), default=ShiftStatus.SCHEDULED)
    timezone: Mapped[str] = mapped_column(sa.String(64))
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime)
    primary_count: Mapped[int] = mapped_column(sa.Integer, default=0)
    backup_count: Mapped[int] = mapped_column(sa.Integer, default=0)
    queue_seq: Mapped[int] = mapped_column(sa.Integer, default=0)
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    cancel_reason: Mapped[str | None] = mapped_column(sa.String(500))
    created_by: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    grid: Mapped[Area] = relationship(lazy="joined")

    __table_args__ = (
        sa.CheckConstraint("status IN ('scheduled','cancelled')", name="status_known"),
        sa.CheckConstraint("ends_at > starts_at", name="ends_after_start"),
        *_template_checks(),
        # The last guard against overbooking; the service's conditional UPDATEs come first.
        sa.CheckConstraint(
            "primary_count >= 0 AND primary_count <= max_headcount", name="primary_count_range"
        ),
        sa.CheckConstraint(
            "backup_count >= 0 AND backup_count <= backup_slots", name="backup_count_range"
        ),
        sa.UniqueConstraint("series_id", "occurrence_local", name="uq_shifts_series_occurrence"),
        sa.Index("ix_shifts_grid_starts_at", "grid_id", "starts_at"),
        sa.Index("ix_shifts_starts_at", "starts_at"),
        # Shifts not over yet (coverage gaps, the console's overview): "ends_at > now" among millions past.
        sa.Index("ix_shifts_ends_at", "ends_at"),
    )


class Assignment(Model):
    """A volunteer's place on a shift: invited, assigned (primary or backup) or waitlisted, and how it ended.

    ``shift_starts_at`` and ``shift_ends_at`` are copies of the shift's times, so a volunteer's places
    can be read in time order by an index of this table alone (the schedule read, issue 19): a
    volunteer's places of a year of history hold the status ``assigned`` too, and joining each to
    its shift to find the ones not ended read all of them. The database keeps the copies, by
    triggers (migration 0022): every insert of a place and every change of its ``shift_id`` or of
    the copies reads them from the shift, and a change of a shift's times is written to its
    places. So every writer, the ORM, Core statements, the bulk loaders' SQL, is covered and none
    writes them itself. Set by the database, they are reloaded on access after a flush (hence
    ``FetchedValue`` and no eager fetch: SQLite's RETURNING shows the row before its AFTER
    trigger); nullable only because SQLite fills them after the insert, never NULL after it.
    """

    __tablename__ = "shift_assignments"
    __mapper_args__ = {"eager_defaults": False}  # noqa: RUF012 - read once by the mapper

    id: Mapped[int] = mapped_column(primary_key=True)
    shift_id: Mapped[int] = mapped_column(sa.ForeignKey("shifts.id", ondelete="CASCADE"))
    volunteer_id: Mapped[int] = mapped_column(sa.ForeignKey("volunteers.id", ondelete="RESTRICT"))
    status: Mapped[str] = mapped_column(sa.String(16))
    role: Mapped[str] = mapped_column(sa.String(16), default=AssignmentRole.PRIMARY)
    source: Mapped[str] = mapped_column(sa.String(16))
    # The shift's queue_seq when the volunteer joined the queue: orders the waitlist and backups.
    queue_seq: Mapped[int | None] = mapped_column(sa.Integer)
    # Withdrew after the cut-off (with an organiser): counts against the volunteer in reports.
    late_withdrawal: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    created_by: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ended_by: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    end_reason: Mapped[str | None] = mapped_column(sa.String(500))
    # The shift's times, kept by the database (see above); read, never written, by the app.
    shift_starts_at: Mapped[datetime | None] = mapped_column(
        UTCDateTime, server_default=sa.FetchedValue(), server_onupdate=sa.FetchedValue()
    )
    shift_ends_at: Mapped[datetime | None] = mapped_column(
        UTCDateTime, server_default=sa.FetchedValue(), server_onupdate=sa.FetchedValue()
    )

    shift: Mapped[Shift] = relationship(lazy="joined")
    volunteer: Mapped[Volunteer] = relationship(lazy="joined")

    __table_args__ = (
        sa.CheckConstraint(
            "status IN ('invited','assigned','waitlisted','declined','withdrawn','removed',"
            "'cancelled','swapped','absent')",
            name="status_known",
        ),
        sa.CheckConstraint("role IN ('primary','backup')", name="role_known"),
        # One live place per volunteer and shift; ended rows stay as history.
        sa.Index(
            "uq_shift_assignments_live",
            "shift_id",
            "volunteer_id",
            unique=True,
            postgresql_where=sa.text("status IN ('invited','assigned','waitlisted')"),
            sqlite_where=sa.text("status IN ('invited','assigned','waitlisted')"),
        ),
        sa.Index("ix_shift_assignments_shift_status", "shift_id", "status", "queue_seq"),
        sa.Index("ix_shift_assignments_volunteer_status", "volunteer_id", "status"),
        # A volunteer's places not ended yet: the range "ends after now", however long the history
        # (the upcoming schedule; its few rows are then sorted by start).
        sa.Index("ix_shift_assignments_volunteer_shift_ends_at", "volunteer_id", "shift_ends_at"),
        # A volunteer's places by start, in the schedule's keyset order (start, id): the past pages
        # backwards from now or from a cursor and stops at the page's end.
        sa.Index("ix_shift_assignments_volunteer_shift_starts_at", "volunteer_id", "shift_starts_at", "id"),
    )
