"""Invitations: an organiser asks a volunteer to take a place; the volunteer accepts or declines.

Nothing is held while an invitation is open; accepting takes the place under the same locks,
counters and rules as sign-up, if one is still free.
"""

from __future__ import annotations

from core.auth import Caller
from core.db import utcnow
from core.errors import Conflict
from core.extensions import db
from shifts import rules, signals
from shifts.filling.service import (
    announce_created,
    audit_place,
    claim_place,
    end_assignment,
    full_error,
    live_assignment,
    take_queue_number,
)
from shifts.models import Assignment, AssignmentSource, AssignmentStatus, Shift
from volunteers.service import referenced_volunteer


def invite(caller: Caller, shift: Shift, volunteer_id: int, role: str) -> Assignment:
    """Ask the volunteer to take a place; nothing is held until they accept."""
    volunteer = referenced_volunteer(caller, volunteer_id)
    rules.lock_schedules([volunteer.id])
    if live_assignment(shift.id, volunteer.id) is not None:
        raise Conflict("The volunteer already has a place on this shift.", code="already_on_shift")
    rules.ensure_can_take(volunteer, shift)
    assignment = Assignment(
        shift_id=shift.id,
        volunteer_id=volunteer.id,
        status=AssignmentStatus.INVITED,
        role=role,
        source=AssignmentSource.INVITATION,
        created_by=caller.user_id,
    )
    db.session.add(assignment)
    db.session.flush()
    audit_place(caller, "shift.invite", shift, assignment, role=role)
    signals.invitation_sent.send(
        signals.SENDER,
        assignment_id=assignment.id,
        shift_id=shift.id,
        volunteer_id=volunteer.id,
        role=role,
        actor_id=caller.user_id,
    )
    return assignment


def _ensure_invitation(assignment: Assignment) -> None:
    if assignment.status != AssignmentStatus.INVITED:
        raise Conflict("This is not an open invitation.", code="not_an_invitation")


def accept(caller: Caller, assignment: Assignment) -> Assignment:
    """The invited volunteer takes the place, if the rules still allow and a place is free."""
    _ensure_invitation(assignment)
    shift = assignment.shift
    rules.lock_schedules([assignment.volunteer_id])
    rules.ensure_can_take(assignment.volunteer, shift)
    queue_number = take_queue_number(shift)
    if not claim_place(shift, assignment.role):
        raise full_error(assignment.role)
    assignment.status = AssignmentStatus.ASSIGNED
    assignment.queue_seq = queue_number
    assignment.updated_at = utcnow()
    db.session.flush()
    db.session.refresh(shift)
    announce_created(assignment, caller.user_id)
    return assignment


def decline(caller: Caller, assignment: Assignment, reason: str | None) -> Assignment:
    _ensure_invitation(assignment)
    end_assignment(assignment, AssignmentStatus.DECLINED, caller.user_id, reason, utcnow())
    db.session.flush()
    signals.assignment_cancelled.send(
        signals.SENDER,
        assignment_id=assignment.id,
        shift_id=assignment.shift_id,
        volunteer_id=assignment.volunteer_id,
        status=AssignmentStatus.DECLINED,
        late=False,
        actor_id=caller.user_id,
        reason=reason,
    )
    return assignment
