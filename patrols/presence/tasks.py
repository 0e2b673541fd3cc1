"""Background work of presence: close forgotten check-outs and mark no-shows (core.tasks).

Both run under beat every PRESENCE_TASKS_MINUTES and from ``flask tasks run-periodic``. Both are
idempotent and work in bounded batches, each committed on its own, so a long backlog holds no
lock for long and a second run at the same time finds nothing left to do twice: the close is a
conditional UPDATE, and a no-show is re-checked under the volunteer's schedule lock (the lock a
check-in takes too).
"""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa
from flask import current_app

from core.db import rowcount, utcnow
from core.extensions import db
from core.tasks import celery, periodic
from core.transactions import commit_batch
from patrols import signals
from patrols.models import Patrol
from patrols.presence.settling import announce_checked_out, settle
from shifts import rules
from shifts.filling.absence import mark_absent
from shifts.models import Assignment, AssignmentRole, AssignmentStatus, Shift, ShiftStatus

#: Rows handled per batch; each batch commits before the next is read.
BATCH = 200
#: No-shows are looked for in shifts that ended at most this long ago (beat may have been down);
#: older shifts are history, and their places are not handed on any more.
NO_SHOW_LOOKBACK = timedelta(days=7)


def close_forgotten_check_outs(now: datetime | None = None, *, batch_size: int = BATCH) -> int:
    """Close every patrol checked in without check-out once its shift ended + grace; returns how many."""
    now = now or utcnow()
    grace = timedelta(minutes=current_app.config["CHECK_OUT_GRACE_MINUTES"])
    closed = 0
    while True:
        due = db.session.scalars(
            sa.select(Patrol.id)
            .join(Shift, Shift.id == Patrol.shift_id)
            .where(
                Patrol.check_in_client_id.is_not(None),
                Patrol.check_out_client_id.is_(None),
                Patrol.auto_closed.is_(False),
                Shift.ends_at <= now - grace,
            )
            .order_by(Patrol.id)
            .limit(batch_size)
        ).all()
        for patrol_id in due:
            result = db.session.execute(
                sa.update(Patrol)
                .where(
                    Patrol.id == patrol_id,
                    Patrol.check_out_client_id.is_(None),
                    Patrol.auto_closed.is_(False),
                )
                .values(auto_closed=True, check_out_received_at=now, updated_at=now)
                .execution_options(synchronize_session=False)
            )
            if rowcount(result) != 1:
                continue  # the phone's check-out or another run got there first
            patrol = db.session.get_one(Patrol, patrol_id, populate_existing=True)
            announce_checked_out(patrol)
            settle(patrol)
            closed += 1
        commit_batch()
        if len(due) < batch_size:
            return closed


def _absence_candidates(now: datetime, cutoff: datetime, after_id: int, limit: int) -> list[int]:
    checked_in = sa.exists().where(
        Patrol.assignment_id == Assignment.id, Patrol.check_in_client_id.is_not(None)
    )
    return list(
        db.session.scalars(
            sa.select(Assignment.id)
            .join(Shift, Shift.id == Assignment.shift_id)
            .where(
                Assignment.id > after_id,
                Assignment.status == AssignmentStatus.ASSIGNED,
                Assignment.role == AssignmentRole.PRIMARY,
                Shift.status == ShiftStatus.SCHEDULED,
                Shift.starts_at <= cutoff,
                # A backup promoted (or a volunteer placed) after the start gets the same time
                # from then on: the place must have been theirs for NO_SHOW_AFTER_MINUTES.
                Assignment.updated_at <= cutoff,
                Shift.ends_at > now - NO_SHOW_LOOKBACK,
                ~checked_in,
            )
            .order_by(Assignment.id)
            .limit(limit)
        ).all()
    )


def _still_absent(assignment: Assignment) -> bool:
    if assignment.status != AssignmentStatus.ASSIGNED or assignment.role != AssignmentRole.PRIMARY:
        return False
    return not db.session.scalar(
        sa.select(
            sa.exists().where(
                Patrol.assignment_id == assignment.id, Patrol.check_in_client_id.is_not(None)
            )
        )
    )


def mark_no_shows(now: datetime | None = None, *, batch_size: int = BATCH) -> int:
    """Mark absent every primary without check-in NO_SHOW_AFTER_MINUTES after the start.

    The backup (else the waitlist) takes the place (``shifts.filling.absence.mark_absent``) and
    ``absent`` is sent for the organiser. Returns how many were marked.
    """
    now = now or utcnow()
    cutoff = now - timedelta(minutes=current_app.config["NO_SHOW_AFTER_MINUTES"])
    marked = 0
    after_id = 0
    while True:
        due = _absence_candidates(now, cutoff, after_id, batch_size)
        commit_batch()
        for assignment_id in due:
            assignment = db.session.get_one(Assignment, assignment_id)  # never deleted
            # The lock a check-in takes: a check-in now either came first or waits for this.
            rules.lock_schedules([assignment.volunteer_id])
            db.session.refresh(assignment)
            if _still_absent(assignment):
                mark_absent(None, assignment, "No check-in.")
                signals.absent.send(
                    signals.SENDER,
                    **signals.Absent(
                        assignment_id=assignment.id,
                        shift_id=assignment.shift_id,
                        volunteer_id=assignment.volunteer_id,
                    ),
                )
                marked += 1
            commit_batch()
        if len(due) < batch_size:
            return marked
        after_id = due[-1]


@periodic("PRESENCE_TASKS_MINUTES")
@celery.task(name="patrols.close_forgotten_check_outs")
def close_forgotten_check_outs_task() -> int:
    """Close check-outs forgotten past the end plus CHECK_OUT_GRACE_MINUTES; returns how many."""
    return close_forgotten_check_outs()


@periodic("PRESENCE_TASKS_MINUTES")
@celery.task(name="patrols.mark_no_shows")
def mark_no_shows_task() -> int:
    """Mark primaries without check-in NO_SHOW_AFTER_MINUTES after the start absent; returns how many."""
    return mark_no_shows()
