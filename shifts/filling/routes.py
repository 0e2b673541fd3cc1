"""HTTP layer of filling shifts: parse, authorise, call the service, serialise."""

from __future__ import annotations

from typing import Any

from flask_smorest import Blueprint

from core.auth import MANAGERS, Role, auth_required, current_caller
from core.idempotency import idempotent
from shifts.filling import absence, assigning, signup
from shifts.filling.schemas import PlaceVolunteerSchema, SignUpSchema
from shifts.schemas import AssignmentSchema
from shifts.service import (
    assignment_view,
    get_assignment_for,
    get_managed_shift,
    get_shift_for,
    own_assignment,
)
from volunteers.schemas import ReasonOptionalSchema, ReasonRequiredSchema

blp = Blueprint(
    "shifts",
    __name__,
    url_prefix="/api/v1",
    description="A shift and its places: sign-up, waitlist, withdrawal, organiser assignment and "
    "invitations, A/B backups",
)


@blp.route("/shifts/<int:shift_id>/signup", methods=["POST"])
@auth_required(Role.VOLUNTEER)
@idempotent
@blp.arguments(SignUpSchema)
@blp.response(201, AssignmentSchema)
@blp.alt_response(403, response="FORBIDDEN")
@blp.alt_response(404, response="NOT_FOUND")
@blp.alt_response(409, response="CONFLICT")
def sign_up(data: dict[str, Any], shift_id: int) -> Any:
    """Sign up for a shift

    Takes a primary place, or a backup place with `role: backup`. When every primary place is
    taken the volunteer joins the waitlist (`status: waitlisted`, with `waitlist_position`) and is
    promoted in order when a place frees up. Shifts anywhere in the volunteer's home city.
    Refusals: 403 volunteer_not_active (pending, suspended, retired); 409 already_on_shift,
    shift_started, shift_cancelled, shift_overlap, rest_too_short, backup_places_full.
    """
    caller = current_caller()
    assignment = signup.sign_up(caller, get_shift_for(caller, shift_id), data["role"])
    return assignment_view(assignment, with_shift=True)


@blp.route("/shifts/<int:shift_id>/assign", methods=["POST"])
@auth_required(*MANAGERS)
@blp.arguments(PlaceVolunteerSchema)
@blp.response(201, AssignmentSchema)
@blp.alt_response(403, response="FORBIDDEN")
@blp.alt_response(404, response="NOT_FOUND")
@blp.alt_response(409, response="CONFLICT")
def assign_volunteer(data: dict[str, Any], shift_id: int) -> Any:
    """Assign a volunteer

    Gives a volunteer of your area a primary or backup place directly, also once the shift has
    begun (filling a gap). A waitlisted or invited volunteer is moved up. Refusals: 404
    shift_not_found (also a shift outside your area); 403 volunteer_not_active; 422 on `volunteer_id` for a
    volunteer whose home grid is outside your area, the same answer as for an id that does not
    exist; 409 already_on_shift, shift_full, backup_places_full, shift_overlap, rest_too_short,
    shift_cancelled, shift_started (ended).
    """
    caller = current_caller()
    shift = get_managed_shift(caller, shift_id)
    assignment = assigning.assign(caller, shift, data["volunteer_id"], data["role"])
    return assignment_view(assignment, with_shift=True)


@blp.route("/shifts/<int:shift_id>/invite", methods=["POST"])
@auth_required(*MANAGERS)
@blp.arguments(PlaceVolunteerSchema)
@blp.response(201, AssignmentSchema)
@blp.alt_response(403, response="FORBIDDEN")
@blp.alt_response(404, response="NOT_FOUND")
@blp.alt_response(409, response="CONFLICT")
def invite_volunteer(data: dict[str, Any], shift_id: int) -> Any:
    """Invite a volunteer

    The volunteer accepts or declines; no place is held until they accept. Refusals as for
    assigning, and 409 shift_started once the shift has begun.
    """
    caller = current_caller()
    shift = get_managed_shift(caller, shift_id)
    assignment = assigning.invite(caller, shift, data["volunteer_id"], data["role"])
    return assignment_view(assignment, with_shift=True)


@blp.route("/assignments/<int:assignment_id>", methods=["GET"])
@auth_required()
@blp.response(200, AssignmentSchema)
@blp.alt_response(403, response="FORBIDDEN")
@blp.alt_response(404, response="NOT_FOUND")
def get_assignment(assignment_id: int) -> Any:
    """One place on a shift

    Volunteers see their own (another's is 404); organisers, staff and admins those on shifts in
    their area.
    """
    assignment = get_assignment_for(current_caller(), assignment_id)
    return assignment_view(assignment, with_shift=True)


@blp.route("/assignments/<int:assignment_id>/withdraw", methods=["POST"])
@auth_required()
@idempotent
@blp.arguments(ReasonOptionalSchema)
@blp.response(200, AssignmentSchema)
@blp.alt_response(403, response="FORBIDDEN")
@blp.alt_response(404, response="NOT_FOUND")
@blp.alt_response(409, response="CONFLICT")
def withdraw(data: dict[str, Any], assignment_id: int) -> Any:
    """Withdraw from a shift

    Leaves a place or the waitlist. A volunteer may withdraw on their own until
    SHIFT_WITHDRAW_CUTOFF_MINUTES (default 120) before the start; after that it is 409
    withdrawal_cutoff_passed and an organiser withdraws them, which is recorded as a late
    withdrawal. A primary's place goes to the first backup, else to the first on the waitlist.
    Also 409 assignment_not_live, shift_started (ended).
    """
    caller = current_caller()
    assignment = get_assignment_for(caller, assignment_id)
    signup.withdraw(caller, assignment, data.get("reason"))
    return assignment_view(assignment, with_shift=True)


@blp.route("/assignments/<int:assignment_id>/accept", methods=["POST"])
@auth_required(Role.VOLUNTEER)
@idempotent
@blp.response(200, AssignmentSchema)
@blp.alt_response(403, response="FORBIDDEN")
@blp.alt_response(404, response="NOT_FOUND")
@blp.alt_response(409, response="CONFLICT")
def accept_invitation(assignment_id: int) -> Any:
    """Accept an invitation

    Takes the offered place if the rules still allow it. 409 not_an_invitation, shift_full,
    backup_places_full, shift_overlap, rest_too_short, shift_started, shift_cancelled.
    """
    caller = current_caller()
    assignment = assigning.accept(caller, own_assignment(caller, assignment_id))
    return assignment_view(assignment, with_shift=True)


@blp.route("/assignments/<int:assignment_id>/decline", methods=["POST"])
@auth_required(Role.VOLUNTEER)
@blp.arguments(ReasonOptionalSchema)
@blp.response(200, AssignmentSchema)
@blp.alt_response(404, response="NOT_FOUND")
@blp.alt_response(409, response="CONFLICT")
def decline_invitation(data: dict[str, Any], assignment_id: int) -> Any:
    """Decline an invitation

    409 not_an_invitation when it was already answered or withdrawn.
    """
    caller = current_caller()
    assignment = assigning.decline(caller, own_assignment(caller, assignment_id), data.get("reason"))
    return assignment_view(assignment, with_shift=True)


@blp.route("/assignments/<int:assignment_id>/remove", methods=["POST"])
@auth_required(*MANAGERS)
@blp.arguments(ReasonRequiredSchema)
@blp.response(200, AssignmentSchema)
@blp.alt_response(403, response="FORBIDDEN")
@blp.alt_response(404, response="NOT_FOUND")
@blp.alt_response(409, response="CONFLICT")
def remove_from_shift(data: dict[str, Any], assignment_id: int) -> Any:
    """Remove a volunteer from a shift

    Ends a place, waitlist entry or invitation (status `removed`); a primary's place goes to the
    first backup, else to the waitlist. 409 assignment_not_live, shift_started (ended).
    """
    caller = current_caller()
    assignment = get_assignment_for(caller, assignment_id)
    assigning.remove(caller, assignment, data["reason"])
    return assignment_view(assignment, with_shift=True)


@blp.route("/assignments/<int:assignment_id>/absent", methods=["POST"])
@auth_required(*MANAGERS)
@blp.arguments(ReasonOptionalSchema)
@blp.response(200, AssignmentSchema)
@blp.alt_response(403, response="FORBIDDEN")
@blp.alt_response(404, response="NOT_FOUND")
@blp.alt_response(409, response="CONFLICT")
def mark_absent(data: dict[str, Any], assignment_id: int) -> Any:
    """Record a no-show

    Once the shift has begun, an assigned volunteer who did not come is marked `absent`; a
    primary's place goes to the first backup (AB岗). 409 shift_not_started, assignment_not_live.
    """
    caller = current_caller()
    assignment = get_assignment_for(caller, assignment_id)
    absence.mark_absent(caller.user_id, assignment, data.get("reason"))
    return assignment_view(assignment, with_shift=True)
