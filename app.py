"""Application factory."""

from __future__ import annotations

import importlib
import logging
import os
from typing import Any

from flask import Flask, Response, request
from sqlalchemy.exc import DBAPIError, IntegrityError, SQLAlchemyError
from werkzeug.exceptions import RequestEntityTooLarge

from core.config import build_config, refuse_per_process_limits
from core.docs import assets as docs_assets
from core.db import changes_kept_on_error, configure_sqlite, render_migration_item
from core.dev_server import repair_query_string
from core.errors import BoundedIntConverter, commit_failure_response, problem_response, register_error_handlers
from core.extensions import api, db, jwt, limiter, migrate
from core.metrics import init_metrics
from core.request_input import RequestJSONProvider, init_request_input
from core.tasks import init_celery
from core.uploads import request_body_limit
import patrols
import shifts

log = logging.getLogger(__name__)


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    app = Flask(__name__, instance_path=os.environ.get("INSTANCE_PATH") or None)
    app.wsgi_app = repair_query_string(app.wsgi_app)  # type: ignore[method-assign]
    # Ids are 32-bit on PostgreSQL: a larger id in a path is simply not found, never a 500.
    app.url_map.converters["int"] = BoundedIntConverter
    app.json = RequestJSONProvider(app)  # what clients send is parsed with limits (core/request_input.py)
    app.json.ensure_ascii = False  # type: ignore[attr-defined]
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.config.update(build_config(app.instance_path, test_config))
    refuse_per_process_limits(app.config)

    # Import models so metadata is complete for create_all and Alembic.
    import accounts.models  # noqa: F401
    import core.audit  # noqa: F401
    import core.idempotency  # noqa: F401
    import grids.models  # noqa: F401
    import volunteers.models  # noqa: F401
    for module in (*shifts.MODEL_MODULES, *patrols.MODEL_MODULES):
        importlib.import_module(module)
    import notifications.models  # noqa: F401
    import rewards.models  # noqa: F401

    db.init_app(app)
    with app.app_context():
        if db.engine.dialect.name == "sqlite":
            configure_sqlite(db.engine)
    migrate.init_app(
        app,
        db,
        directory=os.path.join(os.path.dirname(__file__), "migrations"),
        render_as_batch=True,  # SQLite alters tables by copy
        compare_type=True,
        render_item=render_migration_item,
    )
    jwt.init_app(app)
    limiter.init_app(app)
    api.init_app(app)
    register_error_handlers(app)

    from accounts.tokens import register_jwt_handlers

    register_jwt_handlers(jwt)
    _register_blueprints(app)
    _connect_listeners()
    app.register_blueprint(docs_assets)
    init_metrics(app)  # GET /metrics for operators, outside the API document
    _refuse_oversized_bodies(app)
    init_request_input(app)
    _register_transaction_boundary(app)
    # The one list of each package's tasks module (background and periodic work).
    init_celery(
        app, task_modules=(*shifts.TASK_MODULES, *patrols.TASK_MODULES, "notifications.tasks", "rewards.tasks")
    )
    _register_cli(app)
    return app


def _register_blueprints(app: Flask) -> None:
    from accounts.routes import blp as accounts_blp
    from core.health import blp as health_blp
    from grids.routes import blp as grids_blp
    from notifications import broadcasts_routes
    from notifications.routes import blp as notifications_blp
    from rewards import points_routes, rules_routes
    from rewards import catalogue_routes, leaderboards_routes, redemptions_routes
    from volunteers.routes import blp as volunteers_blp

    for blueprint in (health_blp, accounts_blp, grids_blp, volunteers_blp):
        api.register_blueprint(blueprint)
    # Blueprints, CLI and listeners of their own (the order is the API document's).
    shifts.init_app(app)
    patrols.init_app(app)
    for blueprint in (
        notifications_blp,
        broadcasts_routes.blp,
        rules_routes.blp,
        points_routes.blp,
        catalogue_routes.blp,
        redemptions_routes.blp,
        leaderboards_routes.blp,
    ):
        api.register_blueprint(blueprint)


def _connect_listeners() -> None:
    """Packages react to each other's events here, never by importing against DESIGN.md's direction."""
    from notifications import listeners as notification_listeners
    from notifications import reward_listeners as reward_notifications
    from rewards import listeners as reward_listeners
    from volunteers import listeners as volunteer_listeners

    volunteer_listeners.connect()
    notification_listeners.connect()
    reward_notifications.connect()
    reward_listeners.connect()


def _refuse_oversized_bodies(app: Flask) -> None:
    """413 before any work, whether or not the endpoint would read the body."""

    @app.before_request
    def refuse_oversized() -> None:
        limit = request_body_limit(app)  # MAX_CONTENT_LENGTH, or an upload route's own limit
        if request.content_length is not None and request.content_length > limit:
            raise RequestEntityTooLarge()


def _register_transaction_boundary(app: Flask) -> None:
    """The one place a request's work is committed: services only flush."""

    @app.after_request
    def commit_or_rollback(response: Response) -> Response:
        if response.status_code >= 400 and not changes_kept_on_error():
            db.session.rollback()
            return response
        try:
            db.session.commit()
        except IntegrityError:
            db.session.rollback()
            return problem_response(409, "conflict")
        except SQLAlchemyError as error:
            try:
                db.session.rollback()
            except SQLAlchemyError:
                pass  # the connection is gone; the pool replaces it
            unavailable = commit_failure_response(error) if isinstance(error, DBAPIError) else None
            if unavailable is not None:
                return unavailable
            log.exception("commit failed")
            return problem_response(500, "internal_error")
        return response


def _register_cli(app: Flask) -> None:
    from accounts.cli import accounts_cli
    from demo_data import prepare_demo_command, seed_demo_command
    from grids.cli import grids_cli

    app.cli.add_command(accounts_cli)
    app.cli.add_command(grids_cli)
    app.cli.add_command(seed_demo_command)
    app.cli.add_command(prepare_demo_command)
