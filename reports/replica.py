"""Where reports read: a PostgreSQL streaming replica when ``REPORTS_DATABASE_URL`` is set, else the
main database, and how fresh their figures are (``as_of``).

Reports only read, so a standby can carry them and spare the primary. What runs inside
:func:`reading_reports` (a report view, below its ``auth_required``) sees a session of its own on
the replica where it says ``db.session``, so the figure code is the same on either database; the
caller's authentication before it, and the request's commit after it, stay on the main database.
The replica's session never commits. Without the setting :func:`reading_reports` does nothing.

``as_of`` (:func:`figures_as_of`, read before any figure): every change committed before it is in
the figures. On the main database that is now. On a standby it is the primary's commit time of the
last transaction it has replayed (``pg_last_xact_replay_timestamp()``), so replication lag shows as
an older ``as_of``, and "shifts ended by ``as_of``" are counted as of then too; a replica that is
not in recovery (a promoted standby, or the primary itself) is as fresh as now. A standby that has
replayed no transaction since it started cannot say, nor can one that cannot be reached: both are
503 with Retry-After, never figures of unknown age and never a 500.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from celery.signals import worker_process_init
from flask import Flask, current_app
from sqlalchemy import orm

from core import i18n
from core.config import normalise_database_url
from core.db import utcnow
from core.errors import ApiError
from core.extensions import db
from core.tasks import celery
from reports.settings import REPORTS_DATABASE_URL

log = logging.getLogger(__name__)

_ENGINE = "shouwang.reports_engine"
#: The replica's session of the report being computed (None: reports read the main database).
_replica_session: ContextVar[orm.Session | None] = ContextVar("reports_replica_session", default=None)

REPORTS_UNAVAILABLE = i18n.N_(
    "The reports database cannot answer now (it is unreachable, or has not caught up yet); retry shortly."
)
i18n.register_messages(REPORTS_UNAVAILABLE)
#: Seconds a client waits before asking again: a replica restarting or catching up takes seconds.
RETRY_AFTER_SECONDS = 5


def init_replica(app: Flask) -> None:
    """The replica's engine, when configured (made now, connected on the first report)."""
    url = app.config.get(REPORTS_DATABASE_URL)
    if url:
        options = dict(app.config["SQLALCHEMY_ENGINE_OPTIONS"])
        app.extensions[_ENGINE] = sa.create_engine(normalise_database_url(url), **options)


def replica_engine(app: Flask) -> sa.Engine | None:
    return app.extensions.get(_ENGINE)


@worker_process_init.connect
def _fresh_replica_connections_in_child(**_: Any) -> None:
    # A forked pool child must not share the parent's pooled replica connections (export jobs read
    # the replica in workers), as core.tasks does for the main database.
    engine = replica_engine(celery.flask_app) if celery.flask_app is not None else None
    if engine is not None:
        engine.dispose(close=False)


def _unavailable() -> ApiError:
    return ApiError(
        REPORTS_UNAVAILABLE, code="service_unavailable", status=503, headers={"Retry-After": str(RETRY_AFTER_SECONDS)}
    )


@contextmanager
def reading_reports() -> Iterator[None]:
    """Inside, ``db.session`` reads the reports replica (when configured); also a decorator."""
    engine = replica_engine(current_app)
    if engine is None:
        custom_plans(db.session())
        yield
        return
    registry = db.session.registry
    request_session = registry() if registry.has() else None
    replica = orm.Session(bind=engine, autoflush=False)
    # The scoped session's slot for this app context, so every db.session in the figure code is
    # the replica's; a plain Session, as the figure code uses only what all sessions have.
    registry.set(_as_request_session(replica))
    token = _replica_session.set(replica)
    try:
        custom_plans(replica)
        yield
    except (sa.exc.OperationalError, sa.exc.InterfaceError) as error:
        log.warning("reports replica unavailable: %s", type(error.orig).__name__)
        raise _unavailable() from None
    finally:
        _replica_session.reset(token)
        replica.close()
        if request_session is None:
            registry.clear()
        else:
            registry.set(request_session)


def custom_plans(session: orm.Session) -> None:
    """Plan every report statement for its own arguments, for the rest of the transaction.

    psycopg prepares a statement once a connection has run it five times, and PostgreSQL, five
    runs later, may settle on a generic plan, made without the arguments: for the reports, without
    the area's path prefix and the period's dates, whose estimates choose every join. The
    district month then took 17 s instead of 0.6 s from the eleventh call on a connection
    (bench/README.md). Planning each time costs a few milliseconds."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(sa.text("SET LOCAL plan_cache_mode = force_custom_plan"))


def _as_request_session(session: orm.Session) -> Any:
    """``session`` where the scoped session expects Flask-SQLAlchemy's subclass (whose only addition,
    choosing an engine by a model's bind key, the replica's session must not have)."""
    return session


def figures_as_of() -> datetime:
    """The instant the figures about to be read are complete up to (the module's docstring)."""
    now = utcnow()
    replica = _replica_session.get()
    if replica is None or replica.get_bind().dialect.name != "postgresql":
        return now
    in_recovery, replayed_at = replica.execute(
        sa.text("SELECT pg_is_in_recovery(), pg_last_xact_replay_timestamp()")
    ).one()
    return replica_as_of(in_recovery, replayed_at, now)


def replica_as_of(in_recovery: bool, replayed_at: datetime | None, now: datetime) -> datetime:
    """``as_of`` of a replica: now when it is not a standby, else its last replayed commit's time
    (never later than now: the primary's clock may run ahead of ours)."""
    if not in_recovery:
        return now
    if replayed_at is None:
        log.warning("reports replica has replayed no transaction since it started")
        raise _unavailable()
    return min(replayed_at.astimezone(UTC), now)
