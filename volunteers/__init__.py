"""Volunteer profiles, kinds, self-registration, vetting, availability and personal data rights."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from flask import Flask

MODEL_MODULES: tuple[str, ...] = ("volunteers.models",)
TASK_MODULES: tuple[str, ...] = ()


def init_app(app: Flask) -> None:
    """The volunteers API, and the answers volunteers gives to accounts' questions."""
    from core.extensions import api
    from volunteers import listeners
    from volunteers.routes import blp

    api.register_blueprint(blp)
    listeners.connect()
