"""Swap requests between two volunteers: propose, accept or decline, cancel. No HTTP here.

A volunteer offers their assigned place (primary or backup) on a shift that has not begun to another
active volunteer of their community (``volunteers.service.may_see``: the people they patrol with) —
as a hand-over, or as an exchange for one of that volunteer's places (anywhere in the city). The
other volunteer accepts or declines; an organiser, staff member or admin in scope of every shift
involved then approves (carried out at once, every rule checked again under the schedule locks) or
rejects. Places change hands one for one, so no headcount changes: the outgoing assignment ends as
``swapped`` and the incoming one keeps its role and queue position.

A request dies with its places: when one of them ends by any path (withdrawal, removal, a cancelled
shift, an approved swap) the receivers in ``shifts.swaps.listeners`` cancel the open requests
involving it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa

from core import i18n
from core.auth import Caller, Role
from core.db import rowcount, utcnow
from core.errors import Conflict, Forbidden, NotFound, OutOfScope, ValidationFailed
from core.extensions import db
from grids.paths import city_path
from shifts import rules
from shifts.models import LIVE_STATUSES, Assignment, AssignmentStatus, ShiftStatus
from shifts.swaps.models import SwapRequest, SwapStatus
from shifts.swaps.schemas import SwapProposalInput
from volunteers.models import Volunteer
from volunteers.service import own_volunteer, referenced_volunteer

OPEN = (SwapStatus.PROPOSED, SwapStatus.ACCEPTED)

i18n.register_titles(
    i18n.title("swap_not_found", "Swap request not found"),
    i18n.title("swap_already_open", "A swap request for this place is open"),
    i18n.title("invalid_swap_transition", "Not allowed in the swap's status"),
    i18n.title("swap_no_longer_possible", "The swap is no longer possible"),
    i18n.title("assignment_not_swappable", "This place cannot be swapped"),
    i18n.title("not_swap_recipient", "You are not the recipient of this swap"),
    i18n.title("not_swap_requester", "You did not send this swap request"),
)
i18n.register_messages(
    i18n.N_("Swap request not found."),
    i18n.N_("Not one of your places."),
    i18n.N_("You cannot swap with yourself."),
    i18n.N_("Not one of that volunteer's places."),
    i18n.N_("Choose a place on another shift."),
    i18n.N_("The shift is not in your city."),
    i18n.N_("Only an assigned place (primary or backup) can be swapped."),
    i18n.N_("A swap request for this place is already open."),
    i18n.N_("Only the volunteer asked can answer this swap request."),
    i18n.N_("Only the volunteer who sent this swap request can cancel it."),
    i18n.N_("This swap request is not open for this action."),
    i18n.N_("A place in this swap has ended."),
    i18n.N_("A place in this swap ended before the swap was approved."),
)


# --- lookups and access ------------------------------------------------------------------------


def swap_not_found() -> NotFound:
    """The answer for a swap id that does not exist, and for one the caller may not reach."""
    return NotFound("Swap request not found.", code="swap_not_found")


def get_swap(swap_id: int) -> SwapRequest:
    swap = db.session.get(SwapRequest, swap_id)
    if swap is None:
        raise swap_not_found()
    return swap


def swap_assignments(swap: SwapRequest) -> list[Assignment]:
    return [swap.from_assignment] + ([swap.to_assignment] if swap.to_assignment else [])


def get_swap_for(caller: Caller, swap_id: int) -> SwapRequest:
    """Volunteers reach the requests they sent or received; managers those touching their area.
    Any other is not found, as if it did not exist."""
    swap = get_swap(swap_id)
    if caller.role == Role.VOLUNTEER:
        me = own_volunteer(caller)
        if me.id not in (swap.from_assignment.volunteer_id, swap.to_volunteer_id):
            raise swap_not_found()
    elif not any(caller.in_scope(a.shift.grid.path) for a in swap_assignments(swap)):
        raise swap_not_found()
    return swap


def get_managed_swap(caller: Caller, swap_id: int) -> SwapRequest:
    """A request a manager may decide: every shift it touches lies in their subtree. One they may
    see (a shift in their area) but not decide (the other shift elsewhere) is 403 out_of_scope;
    one touching nothing of theirs is not found."""
    swap = get_swap_for(caller, swap_id)
    if not all(caller.in_scope(a.shift.grid.path) for a in swap_assignments(swap)):
        raise OutOfScope("The shift is outside your area.")
    return swap


# --- proposing ---------------------------------------------------------------------------------


def propose(caller: Caller, data: SwapProposalInput) -> SwapRequest:
    """The caller offers one of their places to another volunteer, outright or in exchange."""
    requester = own_volunteer(caller)
    outgoing = _referenced_assignment(
        data["assignment_id"], requester.id, "assignment_id", "Not one of your places."
    )
    # Serialises this volunteer's proposals, so "one open request per place" holds under races.
    rules.lock_schedules([requester.id])
    _ensure_swappable(outgoing)
    open_already = sa.select(SwapRequest.id).where(
        SwapRequest.from_assignment_id == outgoing.id, SwapRequest.status.in_(OPEN)
    )
    if db.session.scalar(open_already) is not None:
        raise Conflict("A swap request for this place is already open.", code="swap_already_open")
    recipient = _recipient(caller, requester, data["to_volunteer_id"])
    counterpart = None
    to_assignment_id = data.get("to_assignment_id")
    if to_assignment_id is not None:
        # Only a place of the volunteer asked counts: anyone else's is "not one of theirs", exactly
        # as an id that does not exist.
        counterpart = _referenced_assignment(
            to_assignment_id,
            recipient.id,
            "to_assignment_id",
            "Not one of that volunteer's places.",
        )
        if counterpart.shift_id == outgoing.shift_id:
            raise ValidationFailed(
                errors={"to_assignment_id": ["Choose a place on another shift."]}
            )
        if not counterpart.shift.grid.path.startswith(city_path(requester.home_grid.path)):
            raise ValidationFailed(errors={"to_assignment_id": ["The shift is not in your city."]})
        _ensure_swappable(counterpart)
    ensure_rules_allow(outgoing, counterpart, requester, recipient)
    swap = SwapRequest(
        from_assignment_id=outgoing.id,
        to_volunteer_id=recipient.id,
        to_assignment_id=counterpart.id if counterpart else None,
        status=SwapStatus.PROPOSED,
        message=data.get("message"),
    )
    db.session.add(swap)
    db.session.flush()
    return swap


def _referenced_assignment(
    assignment_id: int, volunteer_id: int, field: str, message: str
) -> Assignment:
    assignment = db.session.get(Assignment, assignment_id)
    if assignment is None or assignment.volunteer_id != volunteer_id:
        raise ValidationFailed(errors={field: [message]})
    return assignment


def _recipient(caller: Caller, requester: Volunteer, volunteer_id: int) -> Volunteer:
    """The volunteer asked: one the requester may reach (an active volunteer of their community).

    Anyone else answers exactly as an id that does not exist, before any rule about them is
    looked at, so a proposal tells nothing about people out of reach (their status, their shifts).
    """
    if volunteer_id == requester.id:
        raise ValidationFailed(errors={"to_volunteer_id": ["You cannot swap with yourself."]})
    return referenced_volunteer(caller, volunteer_id, "to_volunteer_id")


def _ensure_swappable(assignment: Assignment) -> None:
    if assignment.status != AssignmentStatus.ASSIGNED:
        raise Conflict(
            "Only an assigned place (primary or backup) can be swapped.",
            code="assignment_not_swappable",
        )
    rules.ensure_open(assignment.shift)


def ensure_rules_allow(
    outgoing: Assignment, counterpart: Assignment | None, requester: Volunteer, recipient: Volunteer
) -> None:
    """Every rule for the incoming volunteer(s); each one's own outgoing shift is no clash."""
    _ensure_not_on_shift(recipient.id, outgoing.shift_id)
    rules.ensure_can_take(
        recipient,
        outgoing.shift,
        ignore_shift_ids=[counterpart.shift_id] if counterpart else [],
    )
    if counterpart is not None:
        _ensure_not_on_shift(requester.id, counterpart.shift_id)
        rules.ensure_can_take(requester, counterpart.shift, ignore_shift_ids=[outgoing.shift_id])


def _ensure_not_on_shift(volunteer_id: int, shift_id: int) -> None:
    live = sa.select(Assignment.id).where(
        Assignment.shift_id == shift_id,
        Assignment.volunteer_id == volunteer_id,
        Assignment.status.in_(LIVE_STATUSES),
    )
    if db.session.scalar(live) is not None:
        raise Conflict("The volunteer already has a place on this shift.", code="already_on_shift")


# --- answering ---------------------------------------------------------------------------------


def accept(caller: Caller, swap: SwapRequest) -> SwapRequest:
    """The volunteer asked agrees; the request then waits for an organiser."""
    recipient = _ensure_recipient(caller, swap)
    _ensure_status(swap, (SwapStatus.PROPOSED,))
    expire_if_stale(swap, caller.user_id)
    _ensure_not_on_shift(recipient.id, swap.from_assignment.shift_id)
    counterpart = swap.to_assignment
    rules.ensure_can_take(
        recipient,
        swap.from_assignment.shift,
        ignore_shift_ids=[counterpart.shift_id] if counterpart else [],
    )
    transition(swap, (SwapStatus.PROPOSED,), SwapStatus.ACCEPTED)
    return swap


def decline(caller: Caller, swap: SwapRequest, reason: str | None) -> SwapRequest:
    _ensure_recipient(caller, swap)
    transition(swap, OPEN, SwapStatus.DECLINED, decided_by=caller.user_id, reason=reason)
    return swap


def cancel(caller: Caller, swap: SwapRequest, reason: str | None) -> SwapRequest:
    if own_volunteer(caller).id != swap.from_assignment.volunteer_id:
        raise Forbidden(
            "Only the volunteer who sent this swap request can cancel it.",
            code="not_swap_requester",
        )
    transition(swap, OPEN, SwapStatus.CANCELLED, decided_by=caller.user_id, reason=reason)
    return swap


def _ensure_recipient(caller: Caller, swap: SwapRequest) -> Volunteer:
    me = own_volunteer(caller)
    if me.id != swap.to_volunteer_id:
        raise Forbidden(
            "Only the volunteer asked can answer this swap request.", code="not_swap_recipient"
        )
    return me


def _ensure_status(swap: SwapRequest, allowed: tuple[str, ...]) -> None:
    if swap.status not in allowed:
        raise invalid_transition()


def invalid_transition() -> Conflict:
    return Conflict(
        "This swap request is not open for this action.", code="invalid_swap_transition"
    )


def transition(
    swap: SwapRequest,
    sources: tuple[str, ...],
    target: str,
    *,
    decided_by: int | None = None,
    reason: str | None = None,
) -> None:
    """Move the request on, conditional on its status: of two deciders at once only one wins."""
    values: dict[str, Any] = {"status": target, "updated_at": utcnow()}
    if decided_by is not None:
        values.update(decided_by=decided_by, decision_reason=reason)
    moved = db.session.execute(
        sa.update(SwapRequest)
        .where(SwapRequest.id == swap.id, SwapRequest.status.in_(sources))
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    if rowcount(moved) != 1:
        raise invalid_transition()
    db.session.refresh(swap)


def stale_reason(swap: SwapRequest, now: datetime | None = None) -> str | None:
    """Why the request can never be carried out any more (a place ended, a shift cancelled or
    begun), or None. Problems that may go away (a clash, a suspension) are not staleness."""
    now = now or utcnow()
    for assignment in swap_assignments(swap):
        if assignment.status != AssignmentStatus.ASSIGNED:
            return "A place in this swap has ended."
        if assignment.shift.status != ShiftStatus.SCHEDULED:
            return "The shift has been cancelled."
        if assignment.shift.starts_at <= now:
            return "The shift has already started."
    return None


def expire_if_stale(swap: SwapRequest, actor_id: int) -> None:
    """Cancel a request that can never succeed and say so with 409; the cancellation is kept.

    Called before the request changes anything else, so keeping this request's changes despite the
    error keeps exactly the cancellation.
    """
    reason = stale_reason(swap)
    if reason is None:
        return
    transition(swap, OPEN, SwapStatus.CANCELLED, decided_by=actor_id, reason=reason)
    db.session.flush()
    raise Conflict(reason, code="swap_no_longer_possible", keeps_changes=True)
