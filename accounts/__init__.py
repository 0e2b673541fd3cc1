"""Users, login, token refresh with rotation and families, revocation, roles and the audit log."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from flask import Flask

MODEL_MODULES: tuple[str, ...] = ("accounts.models",)
TASK_MODULES: tuple[str, ...] = ()


def init_app(app: Flask) -> None:
    """Token revocation checks, the accounts API and ``flask accounts``."""
    from accounts.cli import accounts_cli
    from accounts.routes import blp
    from accounts.tokens import register_jwt_handlers
    from core.extensions import api, jwt

    register_jwt_handlers(jwt)
    api.register_blueprint(blp)
    app.cli.add_command(accounts_cli)
