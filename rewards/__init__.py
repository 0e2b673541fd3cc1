"""Rewards: point rules, the ledger, awarding, badges, the catalogue, redemptions, leaderboards."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from flask import Flask

MODEL_MODULES: tuple[str, ...] = ("rewards.models",)
TASK_MODULES: tuple[str, ...] = ("rewards.tasks",)


def init_app(app: Flask) -> None:
    """The rewards API and the listeners that award points for patrols' events."""
    from core.extensions import api
    from rewards import catalogue_routes, leaderboards_routes, listeners, points_routes, redemptions_routes
    from rewards import rules_routes

    for module in (rules_routes, points_routes, catalogue_routes, redemptions_routes, leaderboards_routes):
        api.register_blueprint(module.blp)
    listeners.connect()
