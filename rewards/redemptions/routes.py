"""HTTP layer of redemptions: parse, authorise, call the service, serialise."""

from __future__ import annotations

from typing import Any

from flask_smorest import Blueprint

from core.auth import Role, auth_required, current_caller
from core.errors import error_docs
from core.idempotency import idempotent
from core.pagination import page_schema
from rewards.redemptions import lists as redemptions_lists
from rewards.redemptions import service as redemptions
from rewards.redemptions.schemas import (
    FulfilSchema,
    MyRedemptionListArgs,
    RedeemSchema,
    RedemptionCancelSchema,
    RedemptionListArgs,
    RedemptionRejectSchema,
    RedemptionSchema,
)

blp = Blueprint(
    "rewards-redemptions",
    __name__,
    url_prefix="/api/v1",
    description="Redeeming points for catalogue items: requested → approved → fulfilled, or cancelled / rejected",
)
STAFF = (Role.STAFF, Role.ADMIN)


_errors = error_docs(blp)


def _one(redemption: Any) -> dict[str, Any]:
    return redemptions_lists.views(current_caller(), [redemption])[0]


def _page(page: dict[str, Any]) -> dict[str, Any]:
    return {**page, "items": redemptions_lists.views(current_caller(), page["items"])}


@blp.route("/catalogue-items/<int:item_id>/redemptions", methods=["POST"])
@auth_required(Role.VOLUNTEER)
@idempotent
@blp.arguments(RedeemSchema)
@blp.response(201, RedemptionSchema)
@_errors(403, 404, 409)
def redeem(data: dict[str, Any], item_id: int) -> Any:
    """Redeem points for an item

    Points are deducted and one item taken from stock in one transaction; the redemption is
    `requested` until staff approve it. The same `client_id` again returns the first redemption.
    Refusals, each writing nothing: 403 volunteer_not_active; 404 catalogue_item_not_found (also
    an item not for my home grid, as an unknown id); 409 item_inactive, outside_item_dates,
    redemption_limit_reached, insufficient_points, out_of_stock, client_id_taken.
    """
    redemption, _created = redemptions.redeem(current_caller(), item_id, str(data["client_id"]))
    return _one(redemption)


@blp.route("/redemptions/mine", methods=["GET"])
@auth_required(Role.VOLUNTEER)
@blp.arguments(MyRedemptionListArgs, location="query")
@blp.response(200, page_schema(RedemptionSchema))
@_errors(404)
def list_my_redemptions(args: dict[str, Any]) -> Any:
    """My redemptions

    Newest first, with their pickup codes once approved; filter by `status` (repeatable), `item_id`.
    """
    return _page(redemptions_lists.list_mine(current_caller(), args))


@blp.route("/redemptions", methods=["GET"])
@auth_required(*STAFF)
@blp.arguments(RedemptionListArgs, location="query")
@blp.response(200, page_schema(RedemptionSchema))
@_errors(403)
def list_redemptions(args: dict[str, Any]) -> Any:
    """Redemptions in my area

    Redemptions of items in `area_id`'s subtree (default: my area; outside it 403
    out_of_scope), newest first; filter by `status` (repeatable), `item_id`, `volunteer_id`, or
    the `pickup_code` a volunteer shows. Pickup codes themselves are shown to the volunteer only.
    """
    return _page(redemptions_lists.list_managed(current_caller(), args))


@blp.route("/redemptions/<int:redemption_id>", methods=["GET"])
@auth_required(Role.VOLUNTEER, *STAFF)
@blp.response(200, RedemptionSchema)
@_errors(403, 404)
def get_redemption(redemption_id: int) -> Any:
    """One redemption

    My own; staff and admins those of items in their area. Any other is 404 redemption_not_found,
    the answer for an id that does not exist.
    """
    return _one(redemptions.visible_redemption(current_caller(), redemption_id))


@blp.route("/redemptions/<int:redemption_id>/approve", methods=["POST"])
@auth_required(*STAFF)
@idempotent
@blp.response(200, RedemptionSchema)
@_errors(403, 404, 409)
def approve_redemption(redemption_id: int) -> Any:
    """Approve a redemption

    requested → approved; a unique 8-character pickup code is made for the volunteer.
    409 invalid_redemption_transition from any other status; 404 redemption_not_found (also one of
    an item outside my area).
    """
    return _one(redemptions.approve(current_caller(), redemption_id))


@blp.route("/redemptions/<int:redemption_id>/reject", methods=["POST"])
@auth_required(*STAFF)
@idempotent
@blp.arguments(RedemptionRejectSchema)
@blp.response(200, RedemptionSchema)
@_errors(403, 404, 409)
def reject_redemption(data: dict[str, Any], redemption_id: int) -> Any:
    """Reject a redemption

    requested or approved → rejected, with a reason; the points are refunded by a ledger entry
    and the item goes back in stock. 409 invalid_redemption_transition otherwise.
    """
    return _one(redemptions.reject(current_caller(), redemption_id, data["reason"]))


@blp.route("/redemptions/<int:redemption_id>/cancel", methods=["POST"])
@auth_required(Role.VOLUNTEER, *STAFF)
@idempotent
@blp.arguments(RedemptionCancelSchema)
@blp.response(200, RedemptionSchema)
@_errors(403, 404, 409)
def cancel_redemption(data: dict[str, Any], redemption_id: int) -> Any:
    """Cancel a redemption

    The volunteer cancels their own while requested; staff and admins while requested or
    approved. Points are refunded by a ledger entry and the item goes back in stock.
    409 invalid_redemption_transition otherwise.
    """
    return _one(redemptions.cancel(current_caller(), redemption_id, data.get("reason")))


@blp.route("/redemptions/<int:redemption_id>/fulfil", methods=["POST"])
@auth_required(*STAFF)
@idempotent
@blp.arguments(FulfilSchema)
@blp.response(200, RedemptionSchema)
@_errors(403, 404, 409)
def fulfil_redemption(data: dict[str, Any], redemption_id: int) -> Any:
    """Hand over a redeemed item

    approved → fulfilled when `pickup_code` is the code the volunteer shows (422
    wrong_pickup_code otherwise, nothing changes). 409 invalid_redemption_transition from any
    other status.
    """
    return _one(redemptions.fulfil(current_caller(), redemption_id, data["pickup_code"]))
