"""A/B posts (AB岗) and the waitlist: a place that ends passes on; a free primary place is filled.

:func:`leave` ends a live place (withdrawal, removal, absence, a volunteer suspended) and gives it
back; a primary place then goes to the first backup, or with no backup to the first on the waitlist
who can still come (:func:`promote_into_free_places`, also called when a shift gains places).
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from core.db import utcnow
from core.extensions import db
from shifts import rules, signals
from shifts.filling.service import claim_place, end_assignment, refresh, release_place, take_queue_number
from shifts.models import Assignment, AssignmentRole, AssignmentStatus, Shift, ShiftStatus


def leave(
    assignment: Assignment,
    status: str,
    actor_id: int | None,
    reason: str | None,
    *,
    late: bool = False,
    now: datetime | None = None,
) -> None:
    """End a live assignment, give back its place and pass a primary place on (backup, then waitlist).

    Used for withdrawals, removals, no-shows (``absent``, also by the patrols package) and the like.
    """
    now = now or utcnow()
    shift = assignment.shift
    held_place = assignment.status == AssignmentStatus.ASSIGNED
    rules.lock_schedules([assignment.volunteer_id])
    take_queue_number(shift)  # the shift's row lock, before its counters change
    end_assignment(assignment, status, actor_id, reason, now)
    assignment.late_withdrawal = late
    db.session.flush()
    if held_place:
        release_place(shift, assignment.role)
    signals.assignment_cancelled.send(
        signals.SENDER,
        **signals.AssignmentCancelled(
            assignment_id=assignment.id,
            shift_id=shift.id,
            volunteer_id=assignment.volunteer_id,
            status=status,
            late=late,
            actor_id=actor_id,
            reason=reason,
        ),
    )
    if held_place and assignment.role == AssignmentRole.PRIMARY:
        promote_into_free_places(shift, actor_id, replaced_volunteer_id=assignment.volunteer_id)
    refresh(shift)


def promote_into_free_places(
    shift: Shift, actor_id: int | None, *, replaced_volunteer_id: int | None = None
) -> None:
    """Fill free primary places: the first backups first (AB岗), then the waitlist in order.

    A waiting volunteer who can no longer take the shift (suspended, or booked elsewhere meanwhile),
    or whose schedule another request is changing at this moment, is passed over and keeps their
    place in the queue. Runs until the shift ends.
    """
    refresh(shift)
    if shift.status != ShiftStatus.SCHEDULED or shift.ends_at <= utcnow():
        return
    passed_over: list[int] = []
    while shift.primary_count < shift.max_headcount:
        backup = _first_in_queue(shift, AssignmentStatus.ASSIGNED, AssignmentRole.BACKUP)
        if backup is not None:
            _promote_backup(shift, backup, actor_id, replaced_volunteer_id)
            continue
        waiting = _first_in_queue(shift, AssignmentStatus.WAITLISTED, exclude=passed_over)
        if waiting is None:
            return
        if _can_leave_waitlist(waiting):
            _promote_waiting(shift, waiting, actor_id)
        else:
            passed_over.append(waiting.id)


def _first_in_queue(
    shift: Shift, status: str, role: str | None = None, exclude: list[int] | None = None
) -> Assignment | None:
    stmt = sa.select(Assignment).where(Assignment.shift_id == shift.id, Assignment.status == status)
    if role:
        stmt = stmt.where(Assignment.role == role)
    if exclude:
        stmt = stmt.where(Assignment.id.not_in(exclude))
    return db.session.scalar(stmt.order_by(Assignment.queue_seq, Assignment.id).limit(1))


def _promote_backup(
    shift: Shift, backup: Assignment, actor_id: int | None, replaced_volunteer_id: int | None
) -> None:
    if not claim_place(shift, AssignmentRole.PRIMARY):
        refresh(shift)
        return
    release_place(shift, AssignmentRole.BACKUP)
    backup.role = AssignmentRole.PRIMARY
    backup.updated_at = utcnow()
    db.session.flush()
    refresh(shift)
    signals.backup_promoted.send(
        signals.SENDER,
        **signals.BackupPromoted(
            assignment_id=backup.id,
            shift_id=shift.id,
            volunteer_id=backup.volunteer_id,
            replaced_volunteer_id=replaced_volunteer_id,
            actor_id=actor_id,
        ),
    )


def _can_leave_waitlist(waiting: Assignment) -> bool:
    # We hold the shift's row lock, so waiting for a schedule lock here would reverse the house lock
    # order (schedules, then shifts) and could deadlock. A volunteer whose schedule is being changed
    # this very moment is passed over this time and keeps their place in the queue.
    if not rules.try_lock_schedule(waiting.volunteer_id):
        return False
    db.session.refresh(waiting.volunteer)
    if waiting.volunteer.status != "active":
        return False
    clashes = rules.clashing_shifts(
        waiting.volunteer_id,
        waiting.shift.starts_at,
        waiting.shift.ends_at,
        ignore_shift_ids=[waiting.shift_id],
    )
    return not clashes


def _promote_waiting(shift: Shift, waiting: Assignment, actor_id: int | None) -> None:
    if not claim_place(shift, AssignmentRole.PRIMARY):
        refresh(shift)
        return
    waiting.status = AssignmentStatus.ASSIGNED
    waiting.role = AssignmentRole.PRIMARY
    waiting.updated_at = utcnow()
    db.session.flush()
    refresh(shift)
    signals.waitlist_promoted.send(
        signals.SENDER,
        **signals.WaitlistPromoted(
            assignment_id=waiting.id,
            shift_id=shift.id,
            volunteer_id=waiting.volunteer_id,
            actor_id=actor_id,
        ),
    )
