"""Absence: a volunteer who did not come to a shift that has started (a no-show).

An organiser marks it by hand (``POST /assignments/{id}/absent``); the patrols package marks it
when no check-in arrives in time (``patrols.presence.tasks.mark_no_shows``). Either way the place
ends as ``absent`` and a primary's place goes to the first backup (``shifts.filling.promotion``).
"""

from __future__ import annotations

from core.db import utcnow
from core.errors import Conflict
from shifts.filling.promotion import leave
from shifts.models import Assignment, AssignmentStatus


def mark_absent(actor_id: int | None, assignment: Assignment, reason: str | None = None) -> Assignment:
    """A no-show: the place ends as ``absent`` and a primary's place goes to the first backup.

    Organisers call it by hand; the patrols package calls it when no check-in arrives in time.
    """
    if assignment.status != AssignmentStatus.ASSIGNED:
        raise Conflict("This place has already ended.", code="assignment_not_live")
    if assignment.shift.starts_at > utcnow():
        raise Conflict(
            "Absence can only be recorded once the shift has started.", code="shift_not_started"
        )
    leave(assignment, AssignmentStatus.ABSENT, actor_id, reason)
    return assignment
