"""HTTP layer of broadcasts: parse, authorise, call the service, serialise."""

from __future__ import annotations

from typing import Any

from flask_smorest import Blueprint

from core.auth import MANAGERS, auth_required, current_caller
from core.idempotency import idempotent
from core.pagination import page_schema
from notifications.broadcasts import service as broadcasts
from notifications.broadcasts.schemas import (
    BroadcastCreateInput,
    BroadcastCreateSchema,
    BroadcastDetailSchema,
    BroadcastListArgs,
    BroadcastSchema,
    BroadcastSentSchema,
)

blp = Blueprint(
    "notification-broadcasts",
    __name__,
    url_prefix="/api/v1",
    description="Broadcasts: call-outs to the active volunteers of an area, and how far they got",
)


@blp.route("/broadcasts", methods=["POST"])
@auth_required(*MANAGERS)
@idempotent
@blp.arguments(BroadcastCreateSchema)
@blp.response(201, BroadcastSentSchema)
@blp.alt_response(403, response="FORBIDDEN")
def send_broadcast(data: BroadcastCreateInput) -> Any:
    """Send a broadcast

    A call-out ("two more volunteers needed in grid 12 tonight") to every active volunteer whose
    home grid lies in `area_id`'s subtree (and whose account is active), optionally only of some
    `kinds`. Each recipient gets an
    inbox item and a push with the title and text as written; a non-urgent one waits for the end
    of each recipient's quiet hours, an `urgent` one goes at once. `reached` tells how many
    volunteers were written to and how many of them have an active, recently refreshed device.
    Refusals: 403 out_of_scope (an area outside mine); 422 an unknown area or kind, a title over
    100 or a text over 1,000 characters. Nothing is written on a refusal.
    """
    broadcast, reached = broadcasts.send(current_caller(), data)
    return broadcasts.view(broadcast, reached=reached)


@blp.route("/broadcasts", methods=["GET"])
@auth_required(*MANAGERS)
@blp.arguments(BroadcastListArgs, location="query")
@blp.response(200, page_schema(BroadcastSchema))
@blp.alt_response(403, response="FORBIDDEN")
def list_broadcasts(args: dict[str, Any]) -> Any:
    """Broadcasts in my area

    Broadcasts to areas in my scope, newest first; with `area_id` only those to that area or
    inside it. Refusals: 403 out_of_scope (`area_id` outside mine); 422 an unknown `area_id`.
    """
    return broadcasts.list_for(current_caller(), args)


@blp.route("/broadcasts/<int:broadcast_id>", methods=["GET"])
@auth_required(*MANAGERS)
@blp.response(200, BroadcastDetailSchema)
@blp.alt_response(403, response="FORBIDDEN")
@blp.alt_response(404, response="NOT_FOUND")
def get_broadcast(broadcast_id: int) -> Any:
    """One broadcast and its delivery

    `delivery` counts its notifications by push status: pending (not pushed yet, e.g. held for
    quiet hours or retrying), sent, failed (gave up; still in the inbox) and no_device (inbox
    only). Refusals: 404 broadcast_not_found (also one to an area outside mine).
    """
    broadcast = broadcasts.get_for(current_caller(), broadcast_id)
    return broadcasts.view(broadcast, reached=broadcasts.reached(broadcast), delivery=broadcasts.delivery(broadcast))
