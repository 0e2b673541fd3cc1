"""Application factory."""

from __future__ import annotations

import importlib
import logging
import os
from types import ModuleType
from typing import Any

from flask import Flask, Response, request
from sqlalchemy.exc import DBAPIError, IntegrityError, SQLAlchemyError
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.middleware.proxy_fix import ProxyFix

from core.application import ShouwangFlask
from core.config import build_config, refuse_per_process_limits
from core.cookie_session import LazyCookieSessionInterface
from core.db import configure_sqlite, render_migration_item
from core.dev_server import repair_query_string
from core.errors import BoundedIntConverter, commit_failure_response, problem_response, register_error_handlers
from core.extensions import api, db, jwt, limiter, migrate
from core.logs import configure_logging
from core.metrics import init_metrics
from core.observability import init_observability
from core.overload import init_overload
from core.partitions import include_in_autogenerate
from core.request_input import RequestJSONProvider, init_request_input
from core.tasks import init_celery
from core.transactions import begin_request, changes_kept_on_error, request_reads_only, session_in_use
from core.uploads import request_body_limit

log = logging.getLogger(__name__)

#: The domain packages, each with ``MODEL_MODULES``, ``TASK_MODULES`` and ``init_app(app)`` in its
#: ``__init__.py``; listed in dependency order (DESIGN.md), except that accounts comes before grids:
#: blueprints register in this order, and it is the order of the API document (tags and paths).
PACKAGES = ("core", "accounts", "grids", "volunteers", "shifts", "patrols", "notifications", "rewards", "reports", "records", "console")


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    app = ShouwangFlask(__name__, instance_path=os.environ.get("INSTANCE_PATH") or None)
    # Flask's documented way to wrap its WSGI app; mypy sees a method replaced by a plain callable.
    app.wsgi_app = repair_query_string(app.wsgi_app)  # type: ignore[method-assign,assignment]
    # Ids are 32-bit on PostgreSQL: a larger id in a path is simply not found, never a 500.
    app.url_map.converters["int"] = BoundedIntConverter
    app.session_interface = LazyCookieSessionInterface()  # no signer for requests without the cookie
    app.json = RequestJSONProvider(app)  # what clients send is parsed with limits (core/request_input.py)
    app.json.ensure_ascii = False
    app.json.sort_keys = False
    app.config.update(build_config(app.instance_path, test_config, packages=PACKAGES))
    app.extensions["shouwang.packages"] = PACKAGES  # `flask settings table` lists their settings
    refuse_per_process_limits(app.config)
    _trust_proxies(app)
    if not app.testing:  # tests capture logs with handlers of their own (tests/test_logs.py)
        configure_logging(app.config["LOG_LEVEL"])

    packages = [importlib.import_module(name) for name in PACKAGES]
    # Every model imported before the database is bound, so metadata is complete for Alembic.
    for package in packages:
        for module in package.MODEL_MODULES:
            importlib.import_module(module)

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
        include_name=include_in_autogenerate,  # a partitioned table's partitions are not models
    )
    jwt.init_app(app)
    limiter.init_app(app)
    api.init_app(app)
    register_error_handlers(app)

    # Blueprints, listeners and CLI commands, package by package.
    for package in packages:
        package.init_app(app)
    init_metrics(app)  # GET /metrics for operators, outside the API document
    init_observability(app)  # request ids, access log, request metrics; the outermost WSGI layer
    init_overload(app)  # before any other hook: a request its client no longer waits for does no work
    _refuse_oversized_bodies(app)
    init_request_input(app)
    _register_transaction_boundary(app)
    _check_limits_only_where_declared(app)
    init_celery(app, task_modules=_task_modules(packages))
    _register_cli(app)
    return app


def _trust_proxies(app: Flask) -> None:
    """The client's address from ``X-Forwarded-For``, as many entries from its right as there are
    proxies we run (each appends the address it saw): the login limits and sessions are per client,
    not one budget for every phone behind the proxy. Entries further left are the client's to write."""
    hops = int(app.config["TRUSTED_PROXY_HOPS"])
    if hops > 0:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops)  # type: ignore[method-assign]


def _task_modules(packages: list[ModuleType]) -> list[str]:
    """Every package's task modules (background and periodic work), for the web process, the
    worker and beat alike."""
    return [module for package in packages for module in package.TASK_MODULES]


def _refuse_oversized_bodies(app: Flask) -> None:
    """413 before any work, whether or not the endpoint would read the body."""

    @app.before_request
    def refuse_oversized() -> None:
        limit = request_body_limit(app)  # MAX_CONTENT_LENGTH, or an upload route's own limit
        if request.content_length is not None and request.content_length > limit:
            raise RequestEntityTooLarge()


def _check_limits_only_where_declared(app: Flask) -> None:
    """Leave out flask-limiter's check before every request when it has nothing to check.

    That check applies default, application-wide, blueprint and meta limits; we declare none (each
    limited endpoint has its own, checked by its decorator when the view is called), and it cost
    every request about a tenth of a millisecond, the bare endpoint's biggest share (bench/README.md,
    issue 19). Declare any such limit and the check stays.
    """
    manager = limiter.limit_manager
    if manager.default_limits or manager.application_limits or manager._blueprint_limits or limiter._meta_limits:
        return
    hooks = app.before_request_funcs.get(None, [])
    app.before_request_funcs[None] = [hook for hook in hooks if hook != limiter._check_request_limit]


def _register_transaction_boundary(app: Flask) -> None:
    """The one place a request's work is committed: services only flush."""

    @app.before_request
    def begin() -> None:
        begin_request(app)

    @app.after_request
    def commit_or_rollback(response: Response) -> Response:
        if not session_in_use():
            return response  # no statement ran and nothing is pending (a probe, a static file)
        if request_reads_only():
            # Nothing to commit: each statement ran on its own (core.transactions.reads_only).
            if db.session.new or db.session.dirty or db.session.deleted:
                raise RuntimeError("a view marked reads_only changed the database session")
            db.session.rollback()
            return response
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
    """The demo's commands (demo_data.py spans every package); each package adds its own."""
    from demo_data import prepare_demo_command, seed_demo_command

    app.cli.add_command(seed_demo_command)
    app.cli.add_command(prepare_demo_command)
