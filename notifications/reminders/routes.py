"""HTTP layer of a city's reminder settings."""

from __future__ import annotations

from typing import Any

from flask_smorest import Blueprint

from core.auth import MANAGERS, OFFICIALS, auth_required, current_caller
from core.errors import error_docs
from notifications.reminders import service
from notifications.reminders.schemas import ReminderSettingsSchema, ReminderSettingsUpdateSchema

blp = Blueprint("reminder-settings", __name__)
_errors = error_docs(blp)


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
    return service.reminder_settings(service.reminder_city(current_caller(), area_id, write=False))


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
    city = service.reminder_city(caller, area_id, write=True)
    return service.set_reminder_settings(caller, city, data["offsets_minutes"])
