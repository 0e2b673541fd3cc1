"""HTTP layer of check-in, check-out and presence review: parse, authorise, call the service, serialise."""

from __future__ import annotations

from typing import Any

from flask_smorest import Blueprint

from core.auth import MANAGERS, Role, auth_required, current_caller
from core.idempotency import idempotent
from core.pagination import page_schema
from patrols.models import PresenceStatus
from patrols.presence import review
from patrols.presence import service as presence
from patrols.presence.rules import PhoneEvent
from patrols.presence.schemas import (
    CheckInSchema,
    PatrolPresenceSchema,
    PresenceApproveSchema,
    PresenceEventSchema,
    PresenceRejectSchema,
    PresenceReviewQueryArgs,
)

#: The phone's two writes parse with one schema instance each: given a class, webargs builds a new
#: instance (all its fields bound afresh) for every request. Loading keeps no state in it.
CHECK_IN_SCHEMA = CheckInSchema()
PRESENCE_EVENT_SCHEMA = PresenceEventSchema()

blp = Blueprint(
    "patrol-presence",
    __name__,
    url_prefix="/api/v1",
    description="Check-in and check-out from the phone (geofenced, offline-safe), presence review, no-shows",
)


def _event(data: dict[str, Any]) -> PhoneEvent:
    return PhoneEvent(
        client_id=str(data["client_id"]),
        lat=data["lat"],
        lon=data["lon"],
        accuracy_m=data["accuracy_m"],
        device_time=data["device_time"],
        mock_location=data["mock_location"],
        checkpoint_payload=data.get("checkpoint_payload"),
    )


@blp.route("/assignments/<int:assignment_id>/check-in", methods=["POST"])
@auth_required(Role.VOLUNTEER)
@idempotent(view_serialises=True)  # the schedule lock comes first (presence.place.take_event)
@blp.arguments(CHECK_IN_SCHEMA)
@blp.response(200, PatrolPresenceSchema)
@blp.alt_response(403, response="FORBIDDEN")
@blp.alt_response(404, response="NOT_FOUND")
@blp.alt_response(409, response="CONFLICT")
def check_in(data: dict[str, Any], assignment_id: int) -> Any:
    """Check in to one's own shift

    The phone sends its position, accuracy, clock and a client UUID. Opens CHECK_IN_OPENS_MINUTES
    (default 30) before the start and closes at the end, judged by the device's clock (offline
    phones deliver late). Inside the grid, allowing for the accuracy up to
    CHECK_IN_MAX_ACCURACY_M, it is `verified`; outside, inaccurate, with a clock far off or a mock
    location it is recorded as `needs_review`. The same `client_id` again returns the patrol
    without a second check-in. Refusals: 404 assignment_not_found (also another volunteer's);
    409 shift_cancelled, assignment_not_live, outside_check_in_window, already_checked_in (another
    client_id), client_id_reused; 422 bad coordinates, accuracy or time. With `checkpoint_payload`
    the scanned QR is recorded as a checkpoint scan (listed in the patrol summary) in the same
    transaction; 422 qr_invalid, checkpoint_inactive, checkpoint_other_grid refuse the whole check-in.
    """
    return review.patrol_view(*presence.check_in(current_caller(), assignment_id, _event(data)))


@blp.route("/assignments/<int:assignment_id>/check-out", methods=["POST"])
@auth_required(Role.VOLUNTEER)
@idempotent(view_serialises=True)  # the schedule lock comes first (presence.place.take_event)
@blp.arguments(PRESENCE_EVENT_SCHEMA)
@blp.response(200, PatrolPresenceSchema)
@blp.alt_response(403, response="FORBIDDEN")
@blp.alt_response(404, response="NOT_FOUND")
@blp.alt_response(409, response="CONFLICT")
def check_out(data: dict[str, Any], assignment_id: int) -> Any:
    """Check out of one's own shift

    Same fields as the check-in. May arrive before the check-in (offline phones); the two are
    reconciled when both are known. Served minutes run from check-in to check-out, clipped to the
    start and the end plus CHECK_OUT_GRACE_MINUTES, and are set once presence counts. A check-out
    arriving after the automatic close replaces it. Refusals: 404 assignment_not_found; 409
    shift_cancelled, assignment_not_live, outside_check_out_window (before check-in opens),
    already_checked_out, client_id_reused; 422 bad input.
    """
    return review.patrol_view(*presence.check_out(current_caller(), assignment_id, _event(data)))


@blp.route("/assignments/<int:assignment_id>/patrol", methods=["GET"])
@auth_required()
@blp.response(200, PatrolPresenceSchema)
@blp.alt_response(403, response="FORBIDDEN")
@blp.alt_response(404, response="NOT_FOUND")
def get_patrol(assignment_id: int) -> Any:
    """The patrol of an assignment

    Check-in, check-out, presence status and served minutes. Volunteers see their own; organisers,
    staff and admins those on shifts in their area; any other is 404 assignment_not_found, as an
    unknown id. 404 patrol_not_found until the phone's first event arrives.
    """
    return review.patrol_view(
        review.patrol_of_assignment(current_caller(), assignment_id)
    )


@blp.route("/patrols/review", methods=["GET"])
@auth_required(*MANAGERS)
@blp.arguments(PresenceReviewQueryArgs, location="query")
@blp.response(200, page_schema(PatrolPresenceSchema))
@blp.alt_response(403, response="FORBIDDEN")
def review_queue(args: dict[str, Any]) -> Any:
    """Patrols waiting for presence review

    Patrols on shifts in the caller's area with the given presence status (default
    `needs_review`), oldest first, with cursor pagination.
    """
    page = review.review_queue(
        current_caller(), args["status"], limit=args["limit"], cursor=args["cursor"]
    )
    items = [review.patrol_view(patrol) for patrol in page["items"]]
    return {"items": items, "next_cursor": page["next_cursor"]}


@blp.route("/patrols/<int:patrol_id>/approve", methods=["POST"])
@auth_required(*MANAGERS)
@idempotent
@blp.arguments(PresenceApproveSchema)
@blp.response(200, PatrolPresenceSchema)
@blp.alt_response(403, response="FORBIDDEN")
@blp.alt_response(404, response="NOT_FOUND")
@blp.alt_response(409, response="CONFLICT")
def approve_presence(data: dict[str, Any], patrol_id: int) -> Any:
    """Approve presence that needs review

    The patrol then counts: served minutes are settled if both ends are known. For patrols on
    shifts in the caller's area. 404 patrol_not_found (also one outside my area); 409
    presence_not_under_review.
    """
    patrol = review.review(
        current_caller(), patrol_id, PresenceStatus.APPROVED, data.get("reason")
    )
    return review.patrol_view(patrol)


@blp.route("/patrols/<int:patrol_id>/reject", methods=["POST"])
@auth_required(*MANAGERS)
@idempotent
@blp.arguments(PresenceRejectSchema)
@blp.response(200, PatrolPresenceSchema)
@blp.alt_response(403, response="FORBIDDEN")
@blp.alt_response(404, response="NOT_FOUND")
@blp.alt_response(409, response="CONFLICT")
def reject_presence(data: dict[str, Any], patrol_id: int) -> Any:
    """Reject presence that needs review

    With a reason; the patrol never counts. For patrols on shifts in the caller's area. 404
    patrol_not_found (also one outside my area); 409 presence_not_under_review.
    """
    patrol = review.review(
        current_caller(), patrol_id, PresenceStatus.REJECTED, data["reason"]
    )
    return review.patrol_view(patrol)
