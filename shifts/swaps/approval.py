"""An organiser decides a swap request: approval carries it out in one transaction, or rejection.

Approval takes both volunteers' schedule locks (ascending ids), then the shift rows (lock order of
the house), re-reads everything and checks every rule again for the incoming volunteer(s). Each
place then changes hands one for one: the outgoing assignment ends as ``swapped`` and a new one for
the incoming volunteer keeps its role and queue position, so no headcount changes.

A request that can never succeed any more (a place ended, a shift cancelled or begun) is cancelled
and the approval answers 409 ``swap_no_longer_possible``; the cancellation is kept all the same.
A rule that may pass later (a clash, a suspension) answers 409 and leaves the request accepted.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from core import audit
from core.auth import Caller
from core.db import rowcount, utcnow
from core.errors import Conflict
from core.extensions import db
from shifts import rules, signals
from shifts.models import Assignment, AssignmentSource, AssignmentStatus, Shift
from shifts.swaps.models import SwapRequest, SwapStatus
from shifts.swaps.service import (
    OPEN,
    ensure_rules_allow,
    expire_if_stale,
    invalid_transition,
    swap_assignments,
    transition,
)
from volunteers.models import Volunteer


def approve(caller: Caller, swap: SwapRequest, reason: str | None) -> SwapRequest:
    """Carry the accepted swap out: every place changes hands, or nothing does."""
    if swap.status != SwapStatus.ACCEPTED:
        raise invalid_transition()
    outgoing, counterpart = swap.from_assignment, swap.to_assignment
    requester_id, recipient_id = outgoing.volunteer_id, swap.to_volunteer_id
    rules.lock_schedules([requester_id, recipient_id])
    _lock_shifts(sorted({a.shift_id for a in swap_assignments(swap)}))
    # What we read before the locks may have changed: read it again (the shifts were, by the lock).
    db.session.refresh(swap)
    for assignment in swap_assignments(swap):
        db.session.refresh(assignment)
    if swap.status != SwapStatus.ACCEPTED:
        raise invalid_transition()
    expire_if_stale(swap, caller.user_id)
    requester = _fresh_volunteer(requester_id)
    recipient = _fresh_volunteer(recipient_id)
    ensure_rules_allow(outgoing, counterpart, requester, recipient)

    transition(
        swap, (SwapStatus.ACCEPTED,), SwapStatus.APPROVED, decided_by=caller.user_id, reason=reason
    )
    now = utcnow()
    handed = [(outgoing, _hand_over(outgoing, recipient_id, caller.user_id, reason, now))]
    if counterpart is not None:
        handed.append(
            (counterpart, _hand_over(counterpart, requester_id, caller.user_id, reason, now))
        )
    audit.record(
        caller,
        "shift_swap.approve",
        target_type="shift_swap",
        target_id=swap.id,
        area_path=outgoing.shift.grid.path,
        before={"status": SwapStatus.ACCEPTED.value},
        after={
            "status": SwapStatus.APPROVED.value,
            "reason": reason,
            "swapped_assignment_ids": [old.id for old, _ in handed],
            "created_assignment_ids": [new.id for _, new in handed],
        },
    )
    return swap


def reject(caller: Caller, swap: SwapRequest, reason: str) -> SwapRequest:
    """Refuse an open request (proposed or accepted), with a reason the volunteers see."""
    previous = swap.status
    transition(swap, OPEN, SwapStatus.REJECTED, decided_by=caller.user_id, reason=reason)
    audit.record(
        caller,
        "shift_swap.reject",
        target_type="shift_swap",
        target_id=swap.id,
        area_path=swap.from_assignment.shift.grid.path,
        before={"status": previous},
        after={"status": SwapStatus.REJECTED.value, "reason": reason},
    )
    return swap


def _fresh_volunteer(volunteer_id: int) -> Volunteer:
    """As it is now (a suspension may have landed meanwhile); assignments keep it from vanishing."""
    volunteer = db.session.get(Volunteer, volunteer_id, populate_existing=True)
    assert volunteer is not None
    return volunteer


def _lock_shifts(shift_ids: list[int]) -> None:
    """Row locks on the shifts (PostgreSQL; SQLite already serialises writers), so a concurrent
    cancellation either comes first and is seen, or waits and then sees the new assignments."""
    db.session.scalars(
        sa.select(Shift)
        .where(Shift.id.in_(shift_ids))
        .order_by(Shift.id)
        .with_for_update(of=Shift)
        .execution_options(populate_existing=True)
    ).all()


def _hand_over(
    assignment: Assignment, volunteer_id: int, actor_id: int, reason: str | None, now: datetime
) -> Assignment:
    """End ``assignment`` as swapped; the volunteer gets the same place (role, queue position)."""
    ended = db.session.execute(
        sa.update(Assignment)
        .where(Assignment.id == assignment.id, Assignment.status == AssignmentStatus.ASSIGNED)
        .values(
            status=AssignmentStatus.SWAPPED,
            ended_at=now,
            ended_by=actor_id,
            end_reason=reason,
            updated_at=now,
        )
        .execution_options(synchronize_session=False)
    )
    if rowcount(ended) != 1:  # cannot happen under the locks; never hand over a place not held
        raise Conflict("A place in this swap has ended.", code="swap_no_longer_possible")
    db.session.refresh(assignment)
    replacement = Assignment(
        shift_id=assignment.shift_id,
        volunteer_id=volunteer_id,
        status=AssignmentStatus.ASSIGNED,
        role=assignment.role,
        source=AssignmentSource.SWAP,
        queue_seq=assignment.queue_seq,
        created_by=actor_id,
    )
    try:
        with db.session.begin_nested():
            db.session.add(replacement)
    except IntegrityError:  # the live-place index: the volunteer got onto the shift some other way
        raise Conflict(
            "The volunteer already has a place on this shift.", code="already_on_shift"
        ) from None
    signals.assignment_cancelled.send(
        signals.SENDER,
        **signals.AssignmentCancelled(
            assignment_id=assignment.id,
            shift_id=assignment.shift_id,
            volunteer_id=assignment.volunteer_id,
            status=AssignmentStatus.SWAPPED.value,
            late=False,
            actor_id=actor_id,
            reason=reason,
        ),
    )
    signals.assignment_created.send(
        signals.SENDER,
        **signals.AssignmentCreated(
            assignment_id=replacement.id,
            shift_id=replacement.shift_id,
            volunteer_id=volunteer_id,
            role=replacement.role,
            source=AssignmentSource.SWAP.value,
            actor_id=actor_id,
        ),
    )
    return replacement
