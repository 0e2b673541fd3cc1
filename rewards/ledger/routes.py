"""HTTP layer of points: balances, ledger history, badges, hand-entered hours, the invariant check."""

from __future__ import annotations

from typing import Any

from flask_smorest import Blueprint

from core.auth import MANAGERS, Role, auth_required, current_caller
from core.errors import error_docs
from core.idempotency import idempotent
from core.pagination import page_schema
from rewards.badges import service as badges
from rewards.ledger import points
from rewards.ledger.schemas import (
    BadgeListSchema,
    InvariantSchema,
    LedgerEntrySchema,
    LedgerHistoryArgs,
    PointsQueryArgs,
    PointsSummarySchema,
    ServiceHoursCreateInput,
    ServiceHoursCreateSchema,
    ServiceHoursSchema,
)

blp = Blueprint(
    "reward-points",
    __name__,
    url_prefix="/api/v1",
    description="Points balances and the append-only ledger, badges, hand-entered service hours",
)


_errors = error_docs(blp)


# --- own -----------------------------------------------------------------------------------------


@blp.route("/me/points", methods=["GET"])
@auth_required(Role.VOLUNTEER)
@blp.arguments(PointsQueryArgs, location="query")
@blp.response(200, PointsSummarySchema)
@_errors(401, 403, 404, 422)
def my_points(args: dict[str, Any]) -> Any:
    """My points balance, service hours and points expiring soon"""
    return points.summary(points.own(current_caller()), expiring_within_days=args["expiring_within_days"])


@blp.route("/me/points/history", methods=["GET"])
@auth_required(Role.VOLUNTEER)
@blp.arguments(LedgerHistoryArgs, location="query")
@blp.response(200, page_schema(LedgerEntrySchema))
@_errors(401, 403, 404, 422)
def my_points_history(args: dict[str, Any]) -> Any:
    """My ledger entries, newest first"""
    return points.history(points.own(current_caller()), args)


@blp.route("/me/badges", methods=["GET"])
@auth_required(Role.VOLUNTEER)
@blp.response(200, BadgeListSchema)
@_errors(401, 403, 404)
def my_badges() -> Any:
    """My badges, in the order earned"""
    return {"items": badges.badges_of(points.own(current_caller()).id)}


# --- a volunteer, for managers -------------------------------------------------------------------


@blp.route("/volunteers/<int:volunteer_id>/points", methods=["GET"])
@auth_required(*MANAGERS)
@blp.arguments(PointsQueryArgs, location="query")
@blp.response(200, PointsSummarySchema)
@_errors(401, 403, 404, 422)
def volunteer_points(args: dict[str, Any], volunteer_id: int) -> Any:
    """A volunteer's points balance (volunteers in your area)"""
    volunteer = points.managed(current_caller(), volunteer_id)
    return points.summary(volunteer, expiring_within_days=args["expiring_within_days"])


@blp.route("/volunteers/<int:volunteer_id>/points/history", methods=["GET"])
@auth_required(*MANAGERS)
@blp.arguments(LedgerHistoryArgs, location="query")
@blp.response(200, page_schema(LedgerEntrySchema))
@_errors(401, 403, 404, 422)
def volunteer_points_history(args: dict[str, Any], volunteer_id: int) -> Any:
    """A volunteer's ledger entries, newest first (volunteers in your area)"""
    return points.history(points.managed(current_caller(), volunteer_id), args)


@blp.route("/volunteers/<int:volunteer_id>/badges", methods=["GET"])
@auth_required(*MANAGERS)
@blp.response(200, BadgeListSchema)
@_errors(401, 403, 404)
def volunteer_badges(volunteer_id: int) -> Any:
    """A volunteer's badges (volunteers in your area)"""
    return {"items": badges.badges_of(points.managed(current_caller(), volunteer_id).id)}


# --- one entry: readable, never editable -----------------------------------------------------------


@blp.route("/ledger-entries/<int:entry_id>", methods=["GET"])
@auth_required()
@blp.response(200, LedgerEntrySchema)
@_errors(401, 403, 404)
def get_ledger_entry(entry_id: int) -> Any:
    """One ledger entry (your own, or a volunteer's in your area)

    The ledger is append-only: PATCH, PUT and DELETE are 405 method_not_allowed and change
    nothing; a correction is a new entry.
    """
    return points.entry_for(current_caller(), entry_id)


# --- hand-entered hours --------------------------------------------------------------------------


@blp.route("/service-hours", methods=["POST"])
@auth_required(*MANAGERS)
@idempotent
@blp.arguments(ServiceHoursCreateSchema)
@blp.response(201, ServiceHoursSchema)
@_errors(401, 403, 404, 409, 422)
def record_service_hours(data: ServiceHoursCreateInput) -> Any:
    """Enter service hours by hand for a volunteer in your area

    They count as service (hours, star badges, leaderboards); they earn points only when the
    city's rule for that day says `manual_hours_earn_points`, rounded and capped like served
    shifts. `served_on` is a local day up to a year back, not in the future; one day holds at most
    24 hours of service (422). 409 volunteer_not_vetted for pending or rejected volunteers.
    A `volunteer_id` whose home grid is outside your area is 422 "Unknown volunteer.", the same
    answer as an id that does not exist.
    Accepts an `Idempotency-Key`.
    """
    return points.record_hours(current_caller(), data)


# --- the invariant -------------------------------------------------------------------------------


@blp.route("/rewards/invariant", methods=["GET"])
@auth_required(Role.ADMIN)
@blp.response(200, InvariantSchema)
@_errors(401, 403)
def ledger_invariant() -> Any:
    """Check that every balance equals the sum of its ledger entries

    For the volunteers of your area; `mismatches` lists any volunteer whose stored balance differs
    from the sum of their entries (or is negative). `ok` is true when there are none.
    """
    return points.invariant(current_caller())
