"""Background and periodic work: one Celery app shared by every package.

Packages declare their tasks on :data:`celery` in their own ``tasks.py`` and never import each
other's; core imports none of them. The application factory names the task modules
(``init_celery(app, task_modules=[...])``), so the web process, the worker and beat register the
same tasks and the same schedule::

    from core.tasks import celery, periodic

    @periodic("SERIES_TOP_UP_MINUTES")          # a config key holding the interval in minutes
    @celery.task(name="shifts.top_up_series")
    def top_up_series_task() -> int: ...

Production sets ``CELERY_BROKER_URL`` (RabbitMQ or Redis) and runs ``celery -A worker worker`` and
one ``celery -A worker beat``. Without a broker (the embedded default) ``.delay()`` runs the task
in-process, at once, with the same code and the same transaction boundary.

Every task runs in its own Flask app context and so its own database session, and commits at its
end (services only flush): commit on success, roll back on any exception. A task that works
through a backlog in batches (point expiry, no-shows, the series top-up, delivering the outbox)
also commits after each batch (:func:`core.transactions.commit_batch` says why, and what each batch
must then be). A task is acknowledged only after it has run (``acks_late``) and redelivered if
its worker dies, so task bodies must be idempotent. Enqueue from a request or another task with
:func:`enqueue_after_commit`, never directly, so a rolled-back change sends nothing and the task
never runs before the rows it reads are committed.
"""

from __future__ import annotations

import gc
import importlib
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

import click
import sqlalchemy as sa
from celery import Celery, Task
from celery.signals import (
    worker_process_init,
)
from flask import Flask, current_app, has_app_context
from flask.cli import AppGroup
from sqlalchemy import orm

from core import (
    task_reports,  # noqa: F401  (connects request ids, outcomes and worker logs)
    task_sending,
)
from core.db import utcnow
from core.extensions import db
from core.idempotency import purge_idempotency_records
from core.partitions import ensure_ahead

log = logging.getLogger(__name__)

_PENDING_KEY = "core.tasks.after_commit"
# Used when no broker is configured; tasks then run eagerly and nothing is ever sent here.
_NO_BROKER = "memory://localhost/"


class FlaskTask(Task):
    """A task whose body runs in a Flask app context and commits at its end (a batched task also
    after each batch: :func:`core.transactions.commit_batch`)."""

    # At-least-once delivery: acknowledged after the body ran, redelivered if the worker died
    # meanwhile. Set on the class, so it holds whenever the task was bound to the configuration.
    acks_late = True
    reject_on_worker_lost = True

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        # Not super().__call__: that would replace the request the tracer pushed (id, retries).
        with _flask_app().app_context():
            try:
                result = self.run(*args, **kwargs)
                db.session.commit()
            except BaseException:
                db.session.rollback()
                raise
            finally:
                db.session.remove()
        return result


class ShouwangCelery(Celery):
    """The Celery app, remembering the Flask app its worker runs tasks in."""

    flask_app: Flask | None = None


celery = ShouwangCelery("shouwang", task_cls=FlaskTask)


def _flask_app() -> Flask:
    # Called eagerly from a request, CLI command or test, a task runs in (a new context of) the
    # caller's app; in a worker there is none, so it uses the app init_celery was given.
    if has_app_context():
        return current_app._get_current_object()  # type: ignore[attr-defined]  # the proxy's own, untyped
    if celery.flask_app is None:
        raise RuntimeError("init_celery(app) must run before a task does")
    return celery.flask_app


@dataclass(frozen=True)
class PeriodicEntry:
    task_name: str
    interval_minutes_key: str


_PERIODIC: dict[str, PeriodicEntry] = {}

TaskT = TypeVar("TaskT", bound=Task)


def periodic(interval_minutes_key: str) -> Any:
    """Run the decorated task every ``config[interval_minutes_key]`` minutes under beat (seconds
    when the key ends in ``_SECONDS``)."""

    def register(task: TaskT) -> TaskT:
        _PERIODIC[task.name] = PeriodicEntry(task.name, interval_minutes_key)
        return task

    return register


def beat_schedule(config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The beat schedule of every registered periodic task, intervals read from ``config``.

    A run that has not started within one interval expires: when workers were down, beat's backlog
    collapses into the next run instead of replaying every missed one.
    """
    schedule: dict[str, dict[str, Any]] = {}
    for entry in sorted(_PERIODIC.values(), key=lambda e: e.task_name):
        unit = "seconds" if entry.interval_minutes_key.endswith("_SECONDS") else "minutes"
        interval = timedelta(**{unit: int(config[entry.interval_minutes_key])})
        if interval <= timedelta(0):
            raise ValueError(f"{entry.interval_minutes_key} must be a positive number of {unit}")
        schedule[entry.task_name] = {
            "task": entry.task_name,
            "schedule": interval,
            "options": {"expires": interval.total_seconds()},
        }
    return schedule


def celery_settings(config: dict[str, Any], instance_path: str) -> dict[str, Any]:
    """Celery's settings from the Flask config; no broker means run every task in-process."""
    broker = config.get("CELERY_BROKER_URL")
    return {
        "broker_url": broker or _NO_BROKER,
        "result_backend": config.get("CELERY_RESULT_BACKEND") or None,
        "task_ignore_result": not config.get("CELERY_RESULT_BACKEND"),
        "task_always_eager": not broker,
        # In-process, a failing task is logged and its result marked failed, as in a worker; the
        # caller (a request that has already committed) is not failed by it.
        "task_eager_propagates": False,
        "task_default_queue": config.get("CELERY_QUEUE") or "shouwang",
        "task_serializer": "json",
        "result_serializer": "json",
        "accept_content": ["json"],
        "timezone": "UTC",
        "enable_utc": True,
        # With late acknowledgement, a worker holds no more than the task it is running.
        "worker_prefetch_multiplier": 1,
        "broker_connection_retry_on_startup": True,
        "beat_schedule_filename": f"{instance_path}/celerybeat-schedule",
    }


def init_celery(app: Flask, task_modules: Iterable[str] = ()) -> ShouwangCelery:
    """Configure the shared Celery app from ``app.config`` and register the packages' tasks."""
    for module in task_modules:
        importlib.import_module(module)
    task_sending.owed_tasks.interval = float(app.config.get("TASK_RESEND_SECONDS", 5))
    celery.conf.update(celery_settings(app.config, app.instance_path))
    celery.conf.beat_schedule = beat_schedule(app.config)
    celery.flask_app = app
    app.extensions["celery"] = celery
    if "tasks" not in app.cli.commands:
        app.cli.add_command(tasks_cli)
    return celery


def enqueue_after_commit(task: Task, *args: Any, once: bool = False, **kwargs: Any) -> None:
    """Send ``task`` once the current transaction commits; forget it if the transaction rolls back.

    ``once``: not again if the same call is already waiting for this transaction's commit.
    """
    session = db.session()
    if not session.in_transaction():
        # Without a transaction a rollback would be no event, and the task would wait for a later one.
        session.begin()
    pending = session.info.setdefault(_PENDING_KEY, [])
    if once and (task, args, kwargs) in pending:
        return
    pending.append((task, args, kwargs))


@sa.event.listens_for(orm.Session, "after_commit")
def _send_pending(session: orm.Session) -> None:
    if session.in_nested_transaction():
        return  # a SAVEPOINT released: the outer transaction may still roll back
    for task, args, kwargs in session.info.pop(_PENDING_KEY, []):
        task_sending.send_after_commit(task, args, kwargs)




@sa.event.listens_for(orm.Session, "after_soft_rollback")
def _drop_pending(session: orm.Session, previous_transaction: orm.SessionTransaction) -> None:
    if previous_transaction.parent is None:
        session.info.pop(_PENDING_KEY, None)


@worker_process_init.connect
def _fresh_connections_in_child(**_: Any) -> None:
    # A forked pool child must not share the parent's pooled database connections.
    if celery.flask_app is not None:
        with celery.flask_app.app_context():
            db.engine.dispose(close=False)
    settle_heap()


def settle_heap() -> None:
    """Put what a worker process has loaded (the app, its modules, SQLAlchemy's metadata) out of the
    cycle collector's sight, once the process is ready.

    Left in view, every full collection walks that whole heap while holding the interpreter lock:
    a pause of a tenth of a second or more that stalls every thread of the process, the outbox's
    sender thread among them (measured: one chunk of push calls in four took half as long again).
    Objects made later are collected as before. Celery calls it where tasks run, at start
    (``worker_process_init``: each prefork child, and the solo pool's worker); gunicorn's workers
    once the app is loaded (gunicorn.conf.py).
    """
    gc.collect()
    gc.freeze()


@celery.task(name="core.ping")
def ping() -> str:
    """Round trip through the broker and a worker; touches nothing (``celery -A worker call core.ping``)."""
    return "pong"


@periodic("IDEMPOTENCY_PURGE_MINUTES")
@celery.task(name="core.purge_idempotency_records")
def purge_idempotency_records_task() -> int:
    """Forget Idempotency-Key records older than IDEMPOTENCY_TTL_HOURS; returns how many."""
    return purge_idempotency_records()


@periodic("PARTITION_MAINTAIN_MINUTES")
@celery.task(name="core.maintain_partitions")
def maintain_partitions_task() -> dict[str, list[str]]:
    """Make the monthly partitions (PostgreSQL) from this month to PARTITION_MONTHS_AHEAD ahead
    that are missing; the names made, per table. Idempotent; two at once make each one once."""
    return ensure_ahead(utcnow(), int(current_app.config["PARTITION_MONTHS_AHEAD"]))


tasks_cli = AppGroup("tasks", help="Background and periodic tasks.")


@tasks_cli.command("run-periodic")
def run_periodic_command() -> None:
    """Run every periodic task once, here and now (cron this when no beat runs)."""
    failed = []
    for name in sorted(_PERIODIC):
        result = celery.tasks[name].apply()
        click.echo(f"{name}: {'failed' if result.failed() else result.result}")
        if result.failed():
            failed.append(name)
    if failed:
        raise click.ClickException("failed: " + ", ".join(failed))


@tasks_cli.command("schedule")
def schedule_command() -> None:
    """List the periodic tasks and their intervals."""
    for name, entry in celery.conf.beat_schedule.items():
        click.echo(f"{name}: every {entry['schedule']}")
