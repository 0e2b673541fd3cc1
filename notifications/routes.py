"""The "notifications" section of the API: devices, the inbox, quiet hours, city reminder settings.

Each feature keeps its routes in its own blueprint (``<feature>/routes.py``); they are nested here,
in this order, so the API document keeps one section for the four of them. Broadcasts have a
section of their own (``broadcasts/routes.py``).
"""

from __future__ import annotations

from flask_smorest import Blueprint

from notifications.delivery import receipt_routes as push_receipts
from notifications.devices import routes as devices
from notifications.inbox import routes as inbox
from notifications.quiet_hours import routes as quiet_hours
from notifications.reminders import routes as reminders

blp = Blueprint(
    "notifications",
    __name__,
    url_prefix="/api/v1",
    description="Push devices, the notification inbox, quiet hours, city reminder settings and push receipts",
)
for feature in (devices, inbox, quiet_hours, reminders, push_receipts):
    blp.register_blueprint(feature.blp)
