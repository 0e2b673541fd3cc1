"""HTTP layer of quiet hours: a user's own."""

from __future__ import annotations

from typing import Any

from flask_smorest import Blueprint

from core.auth import auth_required, current_caller
from core.errors import error_docs
from notifications.quiet_hours import service
from notifications.quiet_hours.schemas import QuietHoursSchema, QuietHoursUpdateInput, QuietHoursUpdateSchema

blp = Blueprint("quiet-hours", __name__)
_errors = error_docs(blp)


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
    return service.quiet_hours(current_caller().user_id)


@blp.route("/me/notification-settings", methods=["PUT"])
@auth_required()
@blp.arguments(QuietHoursUpdateSchema)
@blp.response(200, QuietHoursSchema)
@_errors(401, 422)
def put_notification_settings(data: QuietHoursUpdateInput) -> Any:
    """Set my quiet hours

    `quiet_start` and `quiet_end` as HH:MM; a start after the end spans midnight. They may not be
    equal (422): turn quiet hours off with `quiet_hours_enabled: false` instead.
    """
    return service.set_quiet_hours(current_caller().user_id, data)
