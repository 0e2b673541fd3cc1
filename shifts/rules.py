"""The rules every path that puts a volunteer on a shift must keep.

Sign-up, organiser assignment, accepted invitations, waitlist promotion, swaps and auto-fill all call
:func:`ensure_can_take`. Callers first take the volunteer's schedule lock (:func:`lock_schedules`),
so two requests cannot both pass the overlap check for the same volunteer.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from flask import current_app

from core import i18n
from core.db import utcnow
from core.errors import Conflict, Forbidden
from core.extensions import db
from core.locks import LockSpace, lock, lock_column, try_lock
from shifts.models import Assignment, AssignmentStatus, Shift, ShiftStatus
from volunteers.models import Volunteer, VolunteerStatus

i18n.register_titles(
    i18n.title("volunteer_not_active", "Volunteer not active"),
    i18n.title("shift_cancelled", "Shift cancelled"),
    i18n.title("shift_started", "Shift already started"),
    i18n.title("shift_overlap", "Overlapping shift"),
    i18n.title("rest_too_short", "Too little rest between shifts"),
)
i18n.register_messages(
    i18n.N_("Only active volunteers can take shifts."),
    i18n.N_("The shift has been cancelled."),
    i18n.N_("The shift has already started."),
    i18n.N_("The volunteer already has a shift at this time."),
    i18n.N_("The volunteer would have too little rest between two shifts."),
)


def min_rest() -> timedelta:
    return timedelta(minutes=current_app.config["SHIFT_MIN_REST_MINUTES"])


def lock_schedules(volunteer_ids: Iterable[int]) -> None:
    """Hold the schedule locks of these volunteers until the transaction ends."""
    lock(LockSpace.VOLUNTEER_SCHEDULE, volunteer_ids)


def schedule_lock_column(volunteer_id: sa.SQLColumnExpression[int], dialect_name: str) -> sa.ColumnElement[Any]:
    """:func:`lock_schedules` of one volunteer as a select-list expression (``core.locks.lock_column``)."""
    return lock_column(LockSpace.VOLUNTEER_SCHEDULE, volunteer_id, dialect_name)


def try_lock_schedule(volunteer_id: int) -> bool:
    """The volunteer's schedule lock if it is free right now; for callers already holding shift rows."""
    return try_lock(LockSpace.VOLUNTEER_SCHEDULE, volunteer_id)


def ensure_active(volunteer: Volunteer) -> None:
    if volunteer.status != VolunteerStatus.ACTIVE:
        raise Forbidden("Only active volunteers can take shifts.", code="volunteer_not_active")


def ensure_open(shift: Shift, *, allow_started: bool = False, now: datetime | None = None) -> None:
    """The shift is scheduled and, unless ``allow_started`` (organisers filling a gap), not begun."""
    if shift.status != ShiftStatus.SCHEDULED:
        raise Conflict("The shift has been cancelled.", code="shift_cancelled")
    now = now or utcnow()
    if shift.ends_at <= now or (not allow_started and shift.starts_at <= now):
        raise Conflict("The shift has already started.", code="shift_started")


def clashing_shifts(
    volunteer_id: int,
    starts_at: datetime,
    ends_at: datetime,
    *,
    ignore_shift_ids: Iterable[int] = (),
) -> list[tuple[Shift, bool]]:
    """The volunteer's assigned shifts too close to [starts_at, ends_at): (shift, overlaps) pairs.

    ``overlaps`` is False when the shift only breaks the minimum rest. Half-open: a shift ending
    exactly ``rest`` before ``starts_at`` (or starting exactly ``rest`` after ``ends_at``) is fine.

    Read by the places' copies of their shifts' times (``Assignment``, migration 0022): the range
    "ends after starts_at - rest" of ``(volunteer_id, shift_ends_at)`` holds the volunteer's places
    from then on, never the history behind, and only those are joined to their shift (its status).
    The copies equal the shifts' times after every flush (the database's triggers), so a move
    flushed before this check (``shifts.planning.editing``) is seen.
    """
    rest = min_rest()
    stmt = (
        sa.select(Shift)
        .join(Assignment, Assignment.shift_id == Shift.id)
        .where(
            Assignment.volunteer_id == volunteer_id,
            Assignment.shift_ends_at > starts_at - rest,
            Assignment.shift_starts_at < ends_at + rest,
            Assignment.status == AssignmentStatus.ASSIGNED,
            Shift.status == ShiftStatus.SCHEDULED,
        )
        .order_by(Shift.starts_at, Shift.id)
    )
    ignored = list(ignore_shift_ids)
    if ignored:
        stmt = stmt.where(Assignment.shift_id.not_in(ignored))
    return [
        (shift, shift.starts_at < ends_at and shift.ends_at > starts_at)
        for shift in db.session.scalars(stmt).unique()
    ]


def ensure_no_clash(
    volunteer_id: int,
    starts_at: datetime,
    ends_at: datetime,
    *,
    ignore_shift_ids: Iterable[int] = (),
) -> None:
    clashes = clashing_shifts(volunteer_id, starts_at, ends_at, ignore_shift_ids=ignore_shift_ids)
    if any(overlaps for _, overlaps in clashes):
        shift = next(shift for shift, overlaps in clashes if overlaps)
        raise Conflict(
            "The volunteer already has a shift at this time.",
            code="shift_overlap",
            errors={"conflicting_shift_id": [str(shift.id)]},
        )
    if clashes:
        raise Conflict(
            "The volunteer would have too little rest between two shifts.",
            code="rest_too_short",
            errors={"conflicting_shift_id": [str(clashes[0][0].id)]},
        )


def ensure_can_take(
    volunteer: Volunteer,
    shift: Shift,
    *,
    allow_started: bool = False,
    ignore_shift_ids: Iterable[int] = (),
) -> None:
    """Every rule for putting ``volunteer`` on ``shift``; raises the first one broken."""
    ensure_active(volunteer)
    ensure_open(shift, allow_started=allow_started)
    ensure_no_clash(
        volunteer.id, shift.starts_at, shift.ends_at, ignore_shift_ids=[shift.id, *ignore_shift_ids]
    )
