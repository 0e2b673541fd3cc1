"""Rewards: point rules, the ledger, awarding, badges, the catalogue, redemptions, leaderboards.

Features, each a subpackage with the usual rooms: ``rules/`` (a city's versioned point rules),
``ledger/`` (append-only entries and balances, points as the endpoints show them, the invariant,
expiry), ``awarding/`` (service records and points from patrols' events and hand-entered hours),
``badges/``, ``catalogue/``, ``redemptions/`` and ``leaderboards/`` (with the per-period totals
they rank). What they share stays here: the signals rewards sends (``signals.py``) and the
listeners that award points for patrols' events (``listeners.py``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from flask import Flask

MODEL_MODULES: tuple[str, ...] = (
    "rewards.rules.models",
    "rewards.ledger.models",
    "rewards.awarding.models",
    "rewards.badges.models",
    "rewards.catalogue.models",
    "rewards.redemptions.models",
    "rewards.leaderboards.models",
)
TASK_MODULES: tuple[str, ...] = ("rewards.ledger.tasks", "rewards.badges.tasks", "rewards.leaderboards.tasks")


def init_app(app: Flask) -> None:
    """The rewards API (one blueprint per feature) and the listeners that award points for
    patrols' events."""
    from core.extensions import api
    from rewards import listeners
    from rewards.catalogue import routes as catalogue
    from rewards.leaderboards import routes as leaderboards
    from rewards.ledger import routes as ledger
    from rewards.redemptions import routes as redemptions
    from rewards.rules import routes as rules

    for feature in (rules, ledger, catalogue, redemptions, leaderboards):
        api.register_blueprint(feature.blp)
    listeners.connect()
