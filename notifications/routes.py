"""HTTP layer of notifications: devices, the inbox, quiet hours, city reminder settings."""

from __future__ import annotations

from typing import Any

from flask_smorest import Blueprint

from core.auth import MANAGERS, OFFICIALS, auth_required, current_caller
from core.errors import error_docs
from core.idempotency import idempotent
from core.pagination import PageArgs, page_schema
from notifications import service, settings
from notifications.schemas import (
    DeviceRegisterSchema,
    DeviceRemovedSchema,
    DeviceSchema,
    DeviceTokenSchema,
    InboxArgs,
    NotificationSchema,
    QuietHoursSchema,
    QuietHoursUpdateSchema,
    ReadAllResultSchema,
    ReadAllSchema,
    ReminderSettingsSchema,
    ReminderSettingsUpdateSchema,
    UnreadCountSchema,
)

blp = Blueprint(
    "notifications",
    __name__,
    url_prefix="/api/v1",
    description="Push devices, the notification inbox, quiet hours and city reminder settings",
)


_errors = error_docs(blp)


# --- devices ------------------------------------------------------------------------------------


@blp.route("/me/devices", methods=["POST"])
@auth_required()
@idempotent
@blp.arguments(DeviceRegisterSchema)
@blp.response(201, DeviceSchema)
@blp.alt_response(200, schema=DeviceSchema, description="The token was already yours: refreshed")
@_errors(401, 422)
def register_device(data: dict[str, Any]) -> Any:
    """Register this phone for pushes

    Call at every app start and whenever the push service gives the app a new token: 201 for a
    token new to you, 200 when it was already yours (refreshed, and active again after a logout).
    A token registered by another account moves to you (one phone, one user at a time). Tokens
    not registered again for DEVICE_STALE_DAYS (60) get no pushes. At most 10 devices per account
    stay active; registering more retires the least recently refreshed.
    """
    device, new = service.register_device(current_caller().user_id, data)
    return device, (201 if new else 200)


@blp.route("/me/devices", methods=["GET"])
@auth_required()
@blp.arguments(PageArgs, location="query")
@blp.response(200, page_schema(DeviceSchema))
@_errors(401, 422)
def list_devices(args: dict[str, Any]) -> Any:
    """My active devices, most recently registered first"""
    return service.list_devices(current_caller().user_id, limit=args["limit"], cursor=args["cursor"])


@blp.route("/me/devices/<int:device_id>", methods=["DELETE"])
@auth_required()
@idempotent
@blp.response(204)
@_errors(401, 404)
def remove_device(device_id: int) -> None:
    """Stop pushes to one of my devices

    Removing it again is fine (204); another account's device is 404 device_not_found.
    """
    service.remove_device(current_caller().user_id, device_id)


@blp.route("/me/devices/unregister", methods=["POST"])
@auth_required()
@idempotent
@blp.arguments(DeviceTokenSchema)
@blp.response(200, DeviceRemovedSchema)
@_errors(401, 422)
def unregister_device(data: dict[str, Any]) -> Any:
    """Stop pushes to this phone (call before logging out)

    By token, since the app knows its token and not the device id. `removed` is false when the
    token is not an active device of yours; nothing is said about other accounts. When the last
    login of an account ends, all its devices stop receiving pushes anyway.
    """
    return {"removed": service.unregister_token(current_caller().user_id, data["token"])}


# --- the inbox ----------------------------------------------------------------------------------


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


# --- quiet hours ---------------------------------------------------------------------------------


@blp.route("/me/notification-settings", methods=["GET"])
@auth_required()
@blp.response(200, QuietHoursSchema)
@_errors(401)
def get_notification_settings() -> Any:
    """My quiet hours

    Non-urgent pushes wait until the end of the quiet hours, in my area's time zone (default
    QUIET_HOURS_START–QUIET_HOURS_END, 22:00–07:00); urgent ones (red and orange reports,
    no-shows, changes to a shift that would otherwise come too late) go at once. The inbox shows
    everything at once either way.
    """
    return settings.quiet_hours(current_caller().user_id)


@blp.route("/me/notification-settings", methods=["PUT"])
@auth_required()
@blp.arguments(QuietHoursUpdateSchema)
@blp.response(200, QuietHoursSchema)
@_errors(401, 422)
def put_notification_settings(data: dict[str, Any]) -> Any:
    """Set my quiet hours

    `quiet_start` and `quiet_end` as HH:MM; a start after the end spans midnight. They may not be
    equal (422): turn quiet hours off with `quiet_hours_enabled: false` instead.
    """
    return settings.set_quiet_hours(current_caller().user_id, data)


# --- city reminder settings -------------------------------------------------------------------


@blp.route("/areas/<int:area_id>/reminder-settings", methods=["GET"])
@auth_required(*MANAGERS)
@blp.response(200, ReminderSettingsSchema)
@_errors(401, 403, 404)
def get_reminder_settings(area_id: int) -> Any:
    """A city's shift reminders

    How long before each assigned shift its volunteers are reminded (default
    REMINDER_OFFSETS_MINUTES, 24 h and 1 h). Managers working in the city may read them; 404
    not_a_city for any other level of area.
    """
    return settings.reminder_settings(settings.reminder_city(current_caller(), area_id, write=False))


@blp.route("/areas/<int:area_id>/reminder-settings", methods=["PUT"])
@auth_required(*OFFICIALS)
@blp.arguments(ReminderSettingsUpdateSchema)
@blp.response(200, ReminderSettingsSchema)
@_errors(401, 403, 404, 422)
def put_reminder_settings(data: dict[str, Any], area_id: int) -> Any:
    """Set a city's shift reminders

    One to four distinct offsets from 5 minutes to a week (10080). Staff and admins whose area
    covers the whole city; district staff are 403 out_of_scope. Reminders already sent stay sent.
    """
    caller = current_caller()
    city = settings.reminder_city(caller, area_id, write=True)
    return settings.set_reminder_settings(caller, city, data["offsets_minutes"])
