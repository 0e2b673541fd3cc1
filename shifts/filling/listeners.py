"""What the shifts package does when other packages' events happen (it listens; they never import it).

A volunteer who is suspended or retired (also by closing their own account) can no longer patrol:
their future places, waitlist entries and invitations end, and each primary place passes on to the
first backup or the waitlist, in the same transaction as the status change.
"""

from __future__ import annotations

from typing import Any, Unpack

import sqlalchemy as sa

from core.db import utcnow
from core.extensions import db
from shifts.filling.promotion import leave
from shifts.models import LIVE_STATUSES, Assignment, AssignmentStatus, Shift, ShiftStatus
from volunteers import signals as volunteer_signals

LEFT_BECAUSE = {
    "suspended": "The volunteer was suspended.",
    "retired": "The volunteer retired.",
}


def release_future_places(volunteer_id: int, actor_id: int | None, reason: str) -> int:
    """End the volunteer's live assignments on shifts not yet started; returns how many.

    Read by the places' copies of their shifts' times (``Assignment``, migration 0022): the range
    "starts after now" of ``(volunteer_id, shift_starts_at, id)``, in its order, never the history
    behind; only those places are joined to their shifts (the status).
    """
    future = db.session.scalars(
        sa.select(Assignment)
        .join(Shift, Shift.id == Assignment.shift_id)
        .where(
            Assignment.volunteer_id == volunteer_id,
            Assignment.shift_starts_at > utcnow(),
            Assignment.status.in_(LIVE_STATUSES),
            Shift.status == ShiftStatus.SCHEDULED,
        )
        .order_by(Assignment.shift_starts_at, Assignment.id)
    ).all()
    for assignment in future:
        leave(assignment, AssignmentStatus.REMOVED, actor_id, reason)
    return len(future)


def _on_suspended(_sender: Any, **event: Unpack[volunteer_signals.VolunteerEvent]) -> None:
    release_future_places(event["volunteer_id"], event["actor_id"], LEFT_BECAUSE["suspended"])


def _on_retired(_sender: Any, **event: Unpack[volunteer_signals.VolunteerEvent]) -> None:
    release_future_places(event["volunteer_id"], event["actor_id"], LEFT_BECAUSE["retired"])


def connect() -> None:
    """Subscribe once (blinker keeps the functions by weak reference; these are module-level)."""
    volunteer_signals.volunteer_suspended.connect(_on_suspended)
    volunteer_signals.volunteer_retired.connect(_on_retired)
