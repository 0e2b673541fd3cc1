"""A patrol's served minutes, fixed once both ends are known and presence counts, and the signals
that say so (``checked_out``, ``shift_served``).

Every path that can complete a patrol calls :func:`settle`: the phone's check-out or late check-in
(``service``), an organiser's approval (``review``), the automatic close (``tasks``).
"""

from __future__ import annotations

import sqlalchemy as sa

from core.db import rowcount, utcnow
from core.extensions import db
from patrols import signals
from patrols.models import COUNTED_PRESENCE, Patrol
from patrols.presence.rules import ShiftTimes, served_minutes


def announce_checked_out(patrol: Patrol) -> None:
    signals.checked_out.send(
        signals.SENDER,
        **signals.CheckedOut(
            patrol_id=patrol.id,
            assignment_id=patrol.assignment_id,
            shift_id=patrol.shift_id,
            volunteer_id=patrol.volunteer_id,
            auto_closed=patrol.auto_closed,
        ),
    )


def settle(patrol: Patrol, shift: ShiftTimes | None = None) -> bool:
    """Fix the served minutes once both ends are known and presence counts; sends ``shift_served``.

    A conditional UPDATE (``served_minutes IS NULL``), so the signal goes out once, whichever of
    check-out, late check-in, approval or automatic close gets there first. ``shift``: the
    patrol's, when the caller has read it already (else ``patrol.assignment.shift``).
    """
    if patrol.served_minutes is not None or patrol.presence_status not in COUNTED_PRESENCE:
        return False
    minutes = served_minutes(patrol, shift or patrol.assignment.shift)
    if minutes is None:
        return False
    result = db.session.execute(
        sa.update(Patrol)
        .where(Patrol.id == patrol.id, Patrol.served_minutes.is_(None))
        .values(served_minutes=minutes, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    db.session.refresh(patrol)
    if rowcount(result) != 1:
        return False
    signals.shift_served.send(
        signals.SENDER,
        **signals.ShiftServed(
            patrol_id=patrol.id,
            assignment_id=patrol.assignment_id,
            shift_id=patrol.shift_id,
            volunteer_id=patrol.volunteer_id,
            served_minutes=minutes,
        ),
    )
    return True
