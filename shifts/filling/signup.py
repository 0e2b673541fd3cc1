"""Volunteers take places: sign up (a primary or backup place, else the waitlist) and withdraw.

A volunteer withdraws on their own until SHIFT_WITHDRAW_CUTOFF_MINUTES before the start; after it
only an organiser can withdraw them, and that withdrawal is marked late.
"""

from __future__ import annotations

from datetime import timedelta

from flask import current_app

from core.auth import Caller, Role
from core.db import utcnow
from core.errors import Conflict
from core.extensions import db
from shifts import rules
from shifts.filling.promotion import leave
from shifts.filling.service import (
    announce_created,
    claim_place,
    full_error,
    live_assignment,
    refresh,
    take_queue_number,
)
from shifts.models import Assignment, AssignmentRole, AssignmentSource, AssignmentStatus, Shift
from shifts.service import ensure_may_see
from volunteers.service import own_volunteer


def withdraw_cutoff() -> timedelta:
    return timedelta(minutes=current_app.config["SHIFT_WITHDRAW_CUTOFF_MINUTES"])


def sign_up(caller: Caller, shift: Shift, role: str = AssignmentRole.PRIMARY) -> Assignment:
    """The caller takes a place of ``role``; a full primary list puts them on the waitlist."""
    volunteer = own_volunteer(caller)
    ensure_may_see(caller, shift)
    rules.ensure_active(volunteer)
    rules.lock_schedules([volunteer.id])
    if live_assignment(shift.id, volunteer.id) is not None:
        raise Conflict(
            "You already have a place or a waitlist entry on this shift.", code="already_on_shift"
        )
    rules.ensure_open(shift)
    rules.ensure_no_clash(volunteer.id, shift.starts_at, shift.ends_at, ignore_shift_ids=[shift.id])
    queue_number = take_queue_number(shift)
    if claim_place(shift, role):
        status = AssignmentStatus.ASSIGNED
    elif role == AssignmentRole.PRIMARY:
        status = AssignmentStatus.WAITLISTED
    else:
        raise full_error(role)
    assignment = Assignment(
        shift_id=shift.id,
        volunteer_id=volunteer.id,
        status=status,
        role=role,
        source=AssignmentSource.SIGNUP,
        queue_seq=queue_number,
        created_by=caller.user_id,
    )
    db.session.add(assignment)
    db.session.flush()
    refresh(shift)
    if status == AssignmentStatus.ASSIGNED:
        announce_created(assignment, caller.user_id)
    return assignment


def withdraw(caller: Caller, assignment: Assignment, reason: str | None = None) -> Assignment:
    """Leave a place or the waitlist.

    A volunteer withdraws on their own up to the cut-off before the start; after it only an
    organiser can withdraw them, and that withdrawal is marked late (it counts in reports).
    """
    now = utcnow()
    shift = assignment.shift
    if assignment.status not in (AssignmentStatus.ASSIGNED, AssignmentStatus.WAITLISTED):
        raise Conflict("This place has already ended.", code="assignment_not_live")
    if shift.ends_at <= now:
        raise Conflict("The shift has already started.", code="shift_started")
    late = assignment.status == AssignmentStatus.ASSIGNED and now > shift.starts_at - withdraw_cutoff()
    if late and caller.role == Role.VOLUNTEER:
        raise Conflict(
            "The withdrawal cut-off has passed; ask your organiser.", code="withdrawal_cutoff_passed"
        )
    leave(assignment, AssignmentStatus.WITHDRAWN, caller.user_id, reason, late=late, now=now)
    return assignment
