"""Filling shifts: what every way of taking, holding and ending a place shares. No HTTP here.

Every path takes the volunteer's schedule lock, checks the rules (shifts/rules.py), then takes the
shift's row lock by bumping ``queue_seq`` and changes ``primary_count``/``backup_count`` only by a
conditional UPDATE. The bump's returned value orders the waitlist and the backups, so under any
number of concurrent sign-ups the first ``max_headcount`` to get the lock hold the places and the
rest wait in the order they got it.

The ways in and out, each in its own module: volunteers sign up and withdraw (``signup``);
organisers assign, invite (the invited accept or decline) and remove (``assigning``); a no-show is
marked absent (``absence``, by hand or by the patrols' no-show task);
whenever a primary place ends or opens, the first backup takes it, then the waitlist
(``promotion``). Volunteers suspended or retired lose their future places (``listeners``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa

from core import audit, i18n
from core.auth import Caller
from core.db import rowcount
from core.errors import Conflict
from core.extensions import db
from shifts import signals
from shifts.models import LIVE_STATUSES, Assignment, AssignmentRole, Shift, ShiftStatus

i18n.register_titles(
    i18n.title("already_on_shift", "Already on this shift"),
    i18n.title("shift_full", "Shift full"),
    i18n.title("backup_places_full", "Backup places full"),
    i18n.title("withdrawal_cutoff_passed", "Too late to withdraw yourself"),
    i18n.title("assignment_not_live", "Place no longer held"),
    i18n.title("not_an_invitation", "Not an open invitation"),
    i18n.title("shift_not_started", "Shift not started"),
)
i18n.register_messages(
    i18n.N_("You already have a place or a waitlist entry on this shift."),
    i18n.N_("The volunteer already has a place on this shift."),
    i18n.N_("Every primary place on this shift is taken."),
    i18n.N_("Every backup place on this shift is taken."),
    i18n.N_("The withdrawal cut-off has passed; ask your organiser."),
    i18n.N_("This place has already ended."),
    i18n.N_("This is not an open invitation."),
    i18n.N_("Absence can only be recorded once the shift has started."),
)


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
    return rowcount(db.session.execute(stmt.execution_options(synchronize_session=False))) == 1


def release_place(shift: Shift, role: str) -> None:
    column = Shift.primary_count if role == AssignmentRole.PRIMARY else Shift.backup_count
    db.session.execute(
        sa.update(Shift)
        .where(Shift.id == shift.id, column > 0)
        .values({column.key: column - 1})
        .execution_options(synchronize_session=False)
    )


def refresh(*objects: Any) -> None:
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
        **signals.AssignmentCreated(
            assignment_id=assignment.id,
            shift_id=assignment.shift_id,
            volunteer_id=assignment.volunteer_id,
            role=assignment.role,
            source=assignment.source,
            actor_id=actor_id,
        ),
    )


def end_assignment(assignment: Assignment, status: str, actor_id: int | None, reason: str | None, now: datetime) -> None:
    assignment.status = status
    assignment.ended_at = now
    assignment.ended_by = actor_id
    assignment.end_reason = reason
    assignment.updated_at = now


def audit_place(caller: Caller, action: str, shift: Shift, assignment: Assignment, **after: object) -> None:
    audit.record(
        caller,
        action,
        target_type="shift_assignment",
        target_id=assignment.id,
        area_path=shift.grid.path,
        after={"shift_id": shift.id, "volunteer_id": assignment.volunteer_id, **after},
    )
