"""Patrols: check-in/out with review, no-shows, GPS tracks, QR checkpoints, incident reports."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from flask import Flask

MODEL_MODULES: tuple[str, ...] = ("patrols.models", "patrols.track_models", "patrols.report_models")
TASK_MODULES: tuple[str, ...] = ("patrols.tasks",)


def init_app(app: Flask) -> None:
    """The patrols API (presence, tracks and checkpoints, reports)."""
    from core.extensions import api
    from patrols import presence_routes, reports_routes, tracks_routes

    for module in (presence_routes, tracks_routes, reports_routes):
        api.register_blueprint(module.blp)
