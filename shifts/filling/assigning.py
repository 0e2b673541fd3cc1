"""Organisers fill shifts: assign a volunteer directly, invite one (the volunteer accepts or
declines: nothing is held until they accept), or take one off. Absence: ``shifts.filling.absence``.

Same locks and counters as sign-up (shifts/filling/service.py). An organiser may place only
volunteers whose home grid lies in their own subtree, on shifts in their subtree; any other volunteer
id answers as one that does not exist.
"""

from __future__ import annotations

from core.auth import Caller
from core.db import utcnow
from core.errors import Conflict
from core.extensions import db
from shifts import rules, signals
from shifts.filling.promotion import leave
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


def assign(caller: Caller, shift: Shift, volunteer_id: int, role: str) -> Assignment:
    """Give the volunteer a place directly; a waiting or invited volunteer is moved up."""
    volunteer = referenced_volunteer(caller, volunteer_id)
    rules.lock_schedules([volunteer.id])
    existing = live_assignment(shift.id, volunteer.id)
    if existing is not None and existing.status == AssignmentStatus.ASSIGNED:
        raise Conflict("The volunteer already has a place on this shift.", code="already_on_shift")
    # Organisers may still fill a gap once the shift has begun.
    rules.ensure_can_take(volunteer, shift, allow_started=True)
    queue_number = take_queue_number(shift)
    if not claim_place(shift, role):
        raise full_error(role)
    assignment = existing or Assignment(shift_id=shift.id, volunteer_id=volunteer.id)
    assignment.status = AssignmentStatus.ASSIGNED
    assignment.role = role
    assignment.source = AssignmentSource.ORGANISER
    assignment.queue_seq = queue_number
    assignment.created_by = assignment.created_by or caller.user_id
    assignment.updated_at = utcnow()
    db.session.add(assignment)
    db.session.flush()
    db.session.refresh(shift)
    audit_place(caller, "shift.assign", shift, assignment, role=role)
    announce_created(assignment, caller.user_id)
    return assignment


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
        **signals.InvitationSent(
            assignment_id=assignment.id,
            shift_id=shift.id,
            volunteer_id=volunteer.id,
            role=role,
            actor_id=caller.user_id,
        ),
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
        **signals.AssignmentCancelled(
            assignment_id=assignment.id,
            shift_id=assignment.shift_id,
            volunteer_id=assignment.volunteer_id,
            status=AssignmentStatus.DECLINED,
            late=False,
            actor_id=caller.user_id,
            reason=reason,
        ),
    )
    return assignment


def remove(caller: Caller, assignment: Assignment, reason: str) -> Assignment:
    """An organiser takes a volunteer off (a place, the waitlist or an invitation)."""
    if assignment.status not in (
        AssignmentStatus.ASSIGNED, AssignmentStatus.WAITLISTED, AssignmentStatus.INVITED
    ):
        raise Conflict("This place has already ended.", code="assignment_not_live")
    if assignment.shift.ends_at <= utcnow():
        raise Conflict("The shift has already started.", code="shift_started")
    leave(assignment, AssignmentStatus.REMOVED, caller.user_id, reason)
    audit_place(caller, "shift.remove", assignment.shift, assignment, reason=reason)
    return assignment
