"""Notifications: devices, the inbox (which is the push outbox), delivery, reminders, broadcasts."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from flask import Flask

MODEL_MODULES: tuple[str, ...] = ("notifications.models",)
TASK_MODULES: tuple[str, ...] = ("notifications.tasks",)


def init_app(app: Flask) -> None:
    """The notifications API and the listeners that turn other packages' events into notifications."""
    from core.extensions import api
    from notifications import broadcasts_routes, listeners, reward_listeners, routes

    for module in (routes, broadcasts_routes):
        api.register_blueprint(module.blp)
    listeners.connect()
    reward_listeners.connect()
