"""The area tree (city → district → sub-district → community → grid) and grid boundaries."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from flask import Flask

MODEL_MODULES: tuple[str, ...] = ("grids.models",)
TASK_MODULES: tuple[str, ...] = ()


def init_app(app: Flask) -> None:
    """The area tree API and ``flask grids``."""
    from core.extensions import api
    from grids.cli import grids_cli
    from grids.routes import blp

    api.register_blueprint(blp)
    app.cli.add_command(grids_cli)
