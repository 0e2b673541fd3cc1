"""HTTP layer of the inbox: my notifications, the unread count, marking them read."""

from __future__ import annotations

from typing import Any

from flask_smorest import Blueprint

from core.auth import auth_required, current_caller
from core.errors import error_docs
from core.idempotency import idempotent
from core.pagination import page_schema
from notifications.inbox import service
from notifications.inbox.schemas import (
    InboxArgs,
    NotificationSchema,
    ReadAllResultSchema,
    ReadAllSchema,
    UnreadCountSchema,
)

blp = Blueprint("inbox", __name__)
_errors = error_docs(blp)


@blp.route("/me/notifications", methods=["GET"])
@auth_required()
@blp.arguments(InboxArgs, location="query")
@blp.response(200, page_schema(NotificationSchema))
@_errors(401, 422)
def list_notifications(args: dict[str, Any]) -> Any:
    """My notifications, newest first

    The inbox is the record; a push is only the doorbell, so everything is here whether or not
    a push reached a phone (`push_status`). `unread_only=true` for the unread ones.
    """
    return service.list_inbox(
        current_caller().user_id, unread_only=args["unread_only"], limit=args["limit"], cursor=args["cursor"]
    )


@blp.route("/me/notifications/unread-count", methods=["GET"])
@auth_required()
@blp.response(200, UnreadCountSchema)
@_errors(401)
def unread_count() -> Any:
    """How many of my notifications are unread (the badge)"""
    return {"unread": service.unread_count(current_caller().user_id)}


@blp.route("/me/notifications/<int:notification_id>/read", methods=["POST"])
@auth_required()
@idempotent
@blp.response(200, NotificationSchema)
@_errors(401, 404)
def mark_read(notification_id: int) -> Any:
    """Mark one notification read

    Again is fine (the first time is kept). Another account's notification is 404
    notification_not_found.
    """
    return service.mark_read(current_caller().user_id, notification_id)


@blp.route("/me/notifications/read-all", methods=["POST"])
@auth_required()
@idempotent
@blp.arguments(ReadAllSchema, required=False)
@blp.response(200, ReadAllResultSchema)
@_errors(401, 422)
def mark_all_read(data: dict[str, Any]) -> Any:
    """Mark all my notifications read

    Pass `up_to_id` (the newest one shown) so that one arriving meanwhile stays unread.
    """
    return {"marked": service.mark_all_read(current_caller().user_id, data.get("up_to_id"))}
