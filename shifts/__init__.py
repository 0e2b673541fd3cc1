"""Shifts: planning, weekly series, sign-up and assignment, swaps, schedules, auto-fill, calendar feeds."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from flask import Flask

MODEL_MODULES: tuple[str, ...] = ("shifts.models",)
TASK_MODULES: tuple[str, ...] = ("shifts.tasks",)


def init_app(app: Flask) -> None:
    """The shifts API (one blueprint per feature), its listeners and ``flask shifts``."""
    from core.extensions import api
    from shifts import autofill_routes, calendar_routes, listeners, planning_routes, routes, swaps_routes
    from shifts import views_routes
    from shifts.cli import shifts_cli

    for module in (planning_routes, routes, swaps_routes, views_routes, autofill_routes, calendar_routes):
        api.register_blueprint(module.blp)
    listeners.connect()
    app.cli.add_command(shifts_cli)
