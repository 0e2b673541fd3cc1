"""Notifications: devices, the inbox (which is the push outbox), delivery, reminders, broadcasts.

Features, each a subpackage with the usual rooms: ``devices/`` (push tokens), ``inbox/`` (reading
one's notifications), ``quiet_hours/``, ``reminders/`` (before each shift; a city's offsets),
``broadcasts/`` (call-outs to a subtree) and ``delivery/`` (the push providers and the worker that
sends the outbox). What they share stays here: the notification row (``models.py``), writing
notifications (``service.py``), their texts (``texts.py``) and the listeners that turn other
packages' events into notifications (``listeners.py``, ``reward_listeners.py``,
``record_listeners.py``, ``sos_listeners.py``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from flask import Flask

MODEL_MODULES: tuple[str, ...] = (
    "notifications.models",
    "notifications.devices.models",
    "notifications.quiet_hours.models",
    "notifications.reminders.models",
    "notifications.broadcasts.models",
    "notifications.delivery.models",
)
TASK_MODULES: tuple[str, ...] = ("notifications.delivery.tasks", "notifications.reminders.tasks", "notifications.tasks")


def init_app(app: Flask) -> None:
    """The notifications API and the listeners that turn other packages' events into notifications."""
    from core.extensions import api
    from notifications import listeners, record_listeners, reward_listeners, routes, sos_listeners
    from notifications.broadcasts import routes as broadcasts

    for module in (routes, broadcasts):
        api.register_blueprint(module.blp)
    listeners.connect()
    reward_listeners.connect()
    record_listeners.connect()
    sos_listeners.connect()
