"""Filling shifts: sign-up, waitlist, withdrawal, organiser assignment, invitations and A/B promotion.

Every path takes the volunteer's schedule lock, checks the rules (shifts/rules.py), then takes the
shift's row lock by bumping ``queue_seq`` and changes ``primary_count``/``backup_count`` only by a
conditional UPDATE. The bump's returned value orders the waitlist and the backups, so under any
number of concurrent sign-ups the first ``max_headcount`` to get the lock hold the places and the
rest wait in the order they got it.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from flask import current_app

from core import i18n
from core.auth import Caller, Role
from core.db import utcnow
from core.errors import Conflict
from core.extensions import db
from shifts import rules, signals
from shifts.models import (
    LIVE_STATUSES,
    Assignment,
    AssignmentRole,
    AssignmentSource,
    AssignmentStatus,
    Shift,
    ShiftStatus,
)
from shifts.service import ensure_may_see
from volunteers.service import own_volunteer

i18n.register_titles(
    {
        "already_on_shift": ("已在该班次中", "Already on this shift"),
        "shift_full": ("班次已满", "Shift full"),
        "backup_places_full": ("备岗已满", "Backup places full"),
        "withdrawal_cutoff_passed": ("已过自行退出时限", "Too late to withdraw yourself"),
        "assignment_not_live": ("排班已结束", "Place no longer held"),
        "not_an_invitation": ("不是待回复的邀请", "Not an open invitation"),
        "shift_not_started": ("班次尚未开始", "Shift not started"),
    }
)
i18n.register_messages(
    {
        "You already have a place or a waitlist entry on this shift.": "您已在该班次中（已排班、候补或受邀）。",
        "The volunteer already has a place on this shift.": "该志愿者已在该班次中排班。",
        "Every primary place on this shift is taken.": "该班次的正式岗位已满。",
        "Every backup place on this shift is taken.": "该班次的备岗已满。",
        "The withdrawal cut-off has passed; ask your organiser.": "已超过自行退出的时限，请联系组织者。",
        "This place has already ended.": "该排班已经结束。",
        "This is not an open invitation.": "这不是一条待回复的邀请。",
        "Absence can only be recorded once the shift has started.": "班次开始后才能登记缺勤。",
    }
)


def withdraw_cutoff() -> timedelta:
    return timedelta(minutes=current_app.config["SHIFT_WITHDRAW_CUTOFF_MINUTES"])


# --- counters and locks ------------------------------------------------------------------------


def take_queue_number(shift: Shift) -> int:
    """Lock the shift row (PostgreSQL holds it to the commit) and return the next queue number."""
    row = db.session.execute(
        sa.update(Shift)
        .where(Shift.id == shift.id, Shift.status == ShiftStatus.SCHEDULED)
        .values(queue_seq=Shift.queue_seq + 1)
        .returning(Shift.queue_seq)
        .execution_options(synchronize_session=False)
    ).first()
    if row is None:
        raise Conflict("The shift has been cancelled.", code="shift_cancelled")
    return row[0]


def claim_place(shift: Shift, role: str) -> bool:
    """Take one place of ``role`` if one is free: the conditional UPDATE that can never overbook."""
    if role == AssignmentRole.PRIMARY:
        stmt = sa.update(Shift).where(Shift.id == shift.id, Shift.primary_count < Shift.max_headcount)
        stmt = stmt.values(primary_count=Shift.primary_count + 1)
    else:
        stmt = sa.update(Shift).where(Shift.id == shift.id, Shift.backup_count < Shift.backup_slots)
        stmt = stmt.values(backup_count=Shift.backup_count + 1)
    return db.session.execute(stmt.execution_options(synchronize_session=False)).rowcount == 1


def _release_place(shift: Shift, role: str) -> None:
    column = Shift.primary_count if role == AssignmentRole.PRIMARY else Shift.backup_count
    db.session.execute(
        sa.update(Shift)
        .where(Shift.id == shift.id, column > 0)
        .values({column.key: column - 1})
        .execution_options(synchronize_session=False)
    )


def _refresh(*objects: Any) -> None:
    for obj in objects:
        db.session.refresh(obj)


def full_error(role: str) -> Conflict:
    if role == AssignmentRole.PRIMARY:
        return Conflict("Every primary place on this shift is taken.", code="shift_full")
    return Conflict("Every backup place on this shift is taken.", code="backup_places_full")


def live_assignment(shift_id: int, volunteer_id: int) -> Assignment | None:
    return db.session.scalar(
        sa.select(Assignment).where(
            Assignment.shift_id == shift_id,
            Assignment.volunteer_id == volunteer_id,
            Assignment.status.in_(LIVE_STATUSES),
        )
    )


def announce_created(assignment: Assignment, actor_id: int | None) -> None:
    signals.assignment_created.send(
        signals.SENDER,
        assignment_id=assignment.id,
        shift_id=assignment.shift_id,
        volunteer_id=assignment.volunteer_id,
        role=assignment.role,
        source=assignment.source,
        actor_id=actor_id,
    )


def end_assignment(assignment: Assignment, status: str, actor_id: int | None, reason: str | None, now: datetime) -> None:
    assignment.status = status
    assignment.ended_at = now
    assignment.ended_by = actor_id
    assignment.end_reason = reason
    assignment.updated_at = now


# --- volunteers --------------------------------------------------------------------------------


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
    _refresh(shift)
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
        _release_place(shift, assignment.role)
    signals.assignment_cancelled.send(
        signals.SENDER,
        assignment_id=assignment.id,
        shift_id=shift.id,
        volunteer_id=assignment.volunteer_id,
        status=status,
        late=late,
        actor_id=actor_id,
        reason=reason,
    )
    if held_place and assignment.role == AssignmentRole.PRIMARY:
        promote_into_free_places(shift, actor_id, replaced_volunteer_id=assignment.volunteer_id)
    _refresh(shift)


# --- A/B posts and the waitlist ----------------------------------------------------------------


def promote_into_free_places(
    shift: Shift, actor_id: int | None, *, replaced_volunteer_id: int | None = None
) -> None:
    """Fill free primary places: the first backups first (AB岗), then the waitlist in order.

    A waiting volunteer who can no longer take the shift (suspended, or booked elsewhere meanwhile),
    or whose schedule another request is changing at this moment, is passed over and keeps their
    place in the queue. Runs until the shift ends.
    """
    _refresh(shift)
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
        _refresh(shift)
        return
    _release_place(shift, AssignmentRole.BACKUP)
    backup.role = AssignmentRole.PRIMARY
    backup.updated_at = utcnow()
    db.session.flush()
    _refresh(shift)
    signals.backup_promoted.send(
        signals.SENDER,
        assignment_id=backup.id,
        shift_id=shift.id,
        volunteer_id=backup.volunteer_id,
        replaced_volunteer_id=replaced_volunteer_id,
        actor_id=actor_id,
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
        _refresh(shift)
        return
    waiting.status = AssignmentStatus.ASSIGNED
    waiting.role = AssignmentRole.PRIMARY
    waiting.updated_at = utcnow()
    db.session.flush()
    _refresh(shift)
    signals.waitlist_promoted.send(
        signals.SENDER,
        assignment_id=waiting.id,
        shift_id=shift.id,
        volunteer_id=waiting.volunteer_id,
        actor_id=actor_id,
    )
