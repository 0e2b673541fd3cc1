"""HTTP layer of swap requests: parse, authorise, call the service, serialise."""

from __future__ import annotations

from typing import Any

from flask_smorest import Blueprint

from core.auth import MANAGERS, Role, auth_required, current_caller
from core.idempotency import idempotent
from core.pagination import page_schema
from shifts.swaps import approval
from shifts.swaps import service as swaps
from shifts.swaps.lists import list_awaiting_approval, list_mine, swap_view
from shifts.swaps.schemas import (
    AwaitingApprovalQueryArgs,
    MySwapsQueryArgs,
    SwapProposalInput,
    SwapProposalSchema,
    SwapRequestSchema,
)
from volunteers.schemas import ReasonOptionalSchema, ReasonRequiredSchema

blp = Blueprint(
    "shift-swaps",
    __name__,
    url_prefix="/api/v1",
    description="Swap requests between two volunteers: propose, accept, approve",
)


@blp.route("/swap-requests", methods=["POST"])
@auth_required(Role.VOLUNTEER)
@idempotent
@blp.arguments(SwapProposalSchema)
@blp.response(201, SwapRequestSchema)
@blp.alt_response(403, response="FORBIDDEN")
@blp.alt_response(404, response="NOT_FOUND")
@blp.alt_response(409, response="CONFLICT")
def propose_swap(data: SwapProposalInput) -> Any:
    """Propose a swap

    Offers my assigned place (primary or backup, on a shift not yet begun) to another active
    volunteer of my community: a hand-over, or with `to_assignment_id` an exchange for one of
    their assigned places. The other volunteer accepts or declines; an organiser then approves.
    The rules (active, no overlap, minimum rest) are checked now for whoever takes a place, and
    again on approval. Refusals: 422 for a place that is not mine, myself, a place of theirs on the
    same shift; 422 `to_volunteer_id` "Unknown volunteer." for anyone I may not reach (another
    community, not active, no such id: one answer, checked before any rule about them), and 422
    `to_assignment_id` for any place that is not theirs; 403 volunteer_not_active (me, taking
    their place); 409 swap_already_open (one open request per place), assignment_not_swappable
    (not assigned), shift_cancelled, shift_started, already_on_shift, shift_overlap,
    rest_too_short.
    """
    caller = current_caller()
    return swap_view(caller, swaps.propose(caller, data))


@blp.route("/swap-requests/mine", methods=["GET"])
@auth_required(Role.VOLUNTEER)
@blp.arguments(MySwapsQueryArgs, location="query")
@blp.response(200, page_schema(SwapRequestSchema))
def list_my_swaps(args: dict[str, Any]) -> Any:
    """My swap requests

    The requests I sent and those sent to me (or only one `box`), newest first, optionally by
    `status`.
    """
    return list_mine(current_caller(), args)


@blp.route("/swap-requests/awaiting-approval", methods=["GET"])
@auth_required(*MANAGERS)
@blp.arguments(AwaitingApprovalQueryArgs, location="query")
@blp.response(200, page_schema(SwapRequestSchema))
def list_swaps_awaiting_approval(args: dict[str, Any]) -> Any:
    """Swap requests awaiting approval

    Accepted requests I may approve: every shift they touch lies in my area and none has begun.
    Oldest first.
    """
    return list_awaiting_approval(current_caller(), args)


@blp.route("/swap-requests/<int:swap_id>", methods=["GET"])
@auth_required()
@blp.response(200, SwapRequestSchema)
@blp.alt_response(403, response="FORBIDDEN")
@blp.alt_response(404, response="NOT_FOUND")
def get_swap(swap_id: int) -> Any:
    """One swap request

    Volunteers see the requests they sent or received; organisers, staff and admins those touching
    a shift in their area. Any other is 404 swap_not_found, the answer for an id that does not exist.
    """
    caller = current_caller()
    return swap_view(caller, swaps.get_swap_for(caller, swap_id))


@blp.route("/swap-requests/<int:swap_id>/accept", methods=["POST"])
@auth_required(Role.VOLUNTEER)
@idempotent
@blp.response(200, SwapRequestSchema)
@blp.alt_response(403, response="FORBIDDEN")
@blp.alt_response(404, response="NOT_FOUND")
@blp.alt_response(409, response="CONFLICT")
def accept_swap(swap_id: int) -> Any:
    """Accept a swap request

    The volunteer asked agrees; the request then waits for an organiser's approval. My own rules
    are checked now. Refusals: 403 not_swap_recipient, volunteer_not_active; 409
    invalid_swap_transition (not proposed), already_on_shift, shift_overlap, rest_too_short;
    409 swap_no_longer_possible when a place has ended or a shift was cancelled or has begun
    (the request is then cancelled).
    """
    caller = current_caller()
    return swap_view(caller, swaps.accept(caller, swaps.get_swap_for(caller, swap_id)))


@blp.route("/swap-requests/<int:swap_id>/decline", methods=["POST"])
@auth_required(Role.VOLUNTEER)
@blp.arguments(ReasonOptionalSchema)
@blp.response(200, SwapRequestSchema)
@blp.alt_response(403, response="FORBIDDEN")
@blp.alt_response(404, response="NOT_FOUND")
@blp.alt_response(409, response="CONFLICT")
def decline_swap(data: dict[str, Any], swap_id: int) -> Any:
    """Decline a swap request

    The volunteer asked says no, also after accepting while no organiser has decided.
    Refusals: 403 not_swap_recipient; 409 invalid_swap_transition (no longer open).
    """
    caller = current_caller()
    return swap_view(caller, swaps.decline(caller, swaps.get_swap_for(caller, swap_id), data.get("reason")))


@blp.route("/swap-requests/<int:swap_id>/cancel", methods=["POST"])
@auth_required(Role.VOLUNTEER)
@blp.arguments(ReasonOptionalSchema)
@blp.response(200, SwapRequestSchema)
@blp.alt_response(403, response="FORBIDDEN")
@blp.alt_response(404, response="NOT_FOUND")
@blp.alt_response(409, response="CONFLICT")
def cancel_swap(data: dict[str, Any], swap_id: int) -> Any:
    """Cancel my swap request

    While it is open (proposed or accepted). Refusals: 403 not_swap_requester; 409
    invalid_swap_transition (no longer open).
    """
    caller = current_caller()
    return swap_view(caller, swaps.cancel(caller, swaps.get_swap_for(caller, swap_id), data.get("reason")))


@blp.route("/swap-requests/<int:swap_id>/approve", methods=["POST"])
@auth_required(*MANAGERS)
@blp.arguments(ReasonOptionalSchema)
@blp.response(200, SwapRequestSchema)
@blp.alt_response(403, response="FORBIDDEN")
@blp.alt_response(404, response="NOT_FOUND")
@blp.alt_response(409, response="CONFLICT")
def approve_swap(data: dict[str, Any], swap_id: int) -> Any:
    """Approve a swap request

    Carries out an accepted request at once, in one transaction: each place passes to the other
    volunteer with its role and queue position (the old assignment ends as `swapped`, the new one
    has source `swap`); headcounts do not change. Every rule is checked again. Every shift involved
    must lie in my area. Refusals: 404 swap_not_found (also one touching no shift of my area); 403
    out_of_scope (one of its shifts outside my area), volunteer_not_active; 409
    invalid_swap_transition (not accepted), already_on_shift, shift_overlap, rest_too_short (the
    request stays accepted); 409 swap_no_longer_possible when a place has ended or a shift was
    cancelled or has begun (the request is then cancelled).
    """
    caller = current_caller()
    swap = swaps.get_managed_swap(caller, swap_id)
    return swap_view(caller, approval.approve(caller, swap, data.get("reason")))


@blp.route("/swap-requests/<int:swap_id>/reject", methods=["POST"])
@auth_required(*MANAGERS)
@blp.arguments(ReasonRequiredSchema)
@blp.response(200, SwapRequestSchema)
@blp.alt_response(403, response="FORBIDDEN")
@blp.alt_response(404, response="NOT_FOUND")
@blp.alt_response(409, response="CONFLICT")
def reject_swap(data: dict[str, Any], swap_id: int) -> Any:
    """Reject a swap request

    Refuses an open request (proposed or accepted) with a reason the volunteers see. Every shift
    involved must lie in my area. Refusals: 404 swap_not_found (also one touching no shift of my
    area); 403 out_of_scope (one of its shifts outside my area); 409 invalid_swap_transition.
    """
    caller = current_caller()
    swap = swaps.get_managed_swap(caller, swap_id)
    return swap_view(caller, approval.reject(caller, swap, data["reason"]))
