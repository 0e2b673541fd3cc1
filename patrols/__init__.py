"""Patrols: presence on a shift (check-in and check-out, review, no-shows), GPS tracks, QR checkpoints
and incident reports with photos.

Each feature is a subpackage with the rooms of a package (see ``patrols/service.py``). The
application factory needs only what is here: :data:`MODEL_MODULES` (the tables, for SQLAlchemy's
metadata), :data:`TASK_MODULES` (background and periodic work, for Celery) and :func:`init_app`.
"""

from __future__ import annotations

from flask import Flask

#: Modules that declare the package's tables.
MODEL_MODULES: tuple[str, ...] = (
    "patrols.models",
    "patrols.tracks.models",
    "patrols.checkpoints.models",
    "patrols.reports.models",
    "patrols.sos.models",
    "patrols.privacy.models",
)
#: Modules that declare Celery tasks (their ``name=`` strings stay as they are: beat and queued
#: messages refer to them).
TASK_MODULES: tuple[str, ...] = ("patrols.presence.tasks", "patrols.privacy.tasks", "patrols.sos.tasks")


def init_app(app: Flask) -> None:
    """Register the package's API sections, in the order the document lists them. Patrols listen
    to nothing: other packages listen to ``patrols.signals``."""
    from core.extensions import api
    from patrols.checkpoints import routes as checkpoints_routes  # noqa: F401  (adds its routes to tracks)
    from patrols.presence import routes as presence_routes
    from patrols.privacy import export  # noqa: F401  (adds the location sections to the personal-data export)
    from patrols.privacy import routes as privacy_routes
    from patrols.reports import routes as reports_routes
    from patrols.sos import routes as sos_routes
    from patrols.tracks import routes as tracks_routes

    for routes in (presence_routes, tracks_routes, reports_routes, sos_routes, privacy_routes):
        api.register_blueprint(routes.blp)
