"""Shifts: planning one-off and repeating shifts, filling their places (sign-up, waitlist, A/B
backups, organiser assignment, invitations, absence), swaps, schedules and coverage gaps,
auto-fill and calendar feeds.

Each feature is a subpackage with the rooms of a package (see ``shifts/service.py``). The
application factory needs only what is here: :data:`MODEL_MODULES` (the tables, for SQLAlchemy's
metadata), :data:`TASK_MODULES` (background and periodic work, for Celery) and :func:`init_app`.
"""

from __future__ import annotations

from flask import Flask

#: Modules that declare the package's tables.
MODEL_MODULES: tuple[str, ...] = ("shifts.models", "shifts.swaps.models", "shifts.calendar.models")
#: Modules that declare Celery tasks (their ``name=`` strings stay as they are: beat and queued
#: messages refer to them).
TASK_MODULES: tuple[str, ...] = ("shifts.series.tasks",)


def init_app(app: Flask) -> None:
    """Register the package's API sections (in the order the document lists them) and its
    ``flask shifts`` commands, and connect its listeners."""
    from core.extensions import api
    from shifts.autofill import routes as autofill_routes
    from shifts.calendar import routes as calendar_routes
    from shifts.cli import shifts_cli
    from shifts.filling import listeners as filling_listeners
    from shifts.filling import routes as filling_routes
    from shifts.planning import routes as planning_routes
    from shifts.schedules import routes as schedules_routes
    from shifts.series import routes as series_routes  # noqa: F401  (adds its routes to planning's)
    from shifts.swaps import listeners as swaps_listeners
    from shifts.swaps import routes as swaps_routes

    for routes in (
        planning_routes,
        filling_routes,
        swaps_routes,
        schedules_routes,
        autofill_routes,
        calendar_routes,
    ):
        api.register_blueprint(routes.blp)
    app.cli.add_command(shifts_cli)
    filling_listeners.connect()
    swaps_listeners.connect()
