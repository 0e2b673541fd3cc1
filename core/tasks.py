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

import contextvars
import importlib
import json
import logging
import os
import threading
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

import click
import sqlalchemy as sa
from celery import Celery, Task
from celery.signals import (
    before_task_publish,
    setup_logging,
    task_failure,
    task_postrun,
    task_prerun,
    task_retry,
    task_success,
    worker_process_init,
)
from flask import Flask, current_app, has_app_context
from flask.cli import AppGroup
from prometheus_client import Counter as PrometheusCounter
from sqlalchemy import orm

from core.extensions import db
from core.idempotency import purge_idempotency_records
from core.logs import configure_logging, current_request_id, new_request_id, request_id_var, sane_request_id
from core.metrics import Sample, register_gauges

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
    _owed.interval = float(app.config.get("TASK_RESEND_SECONDS", 5))
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
        send_after_commit(task, args, kwargs)


# --- sending after a commit, whatever the broker does ---------------------------------------------


class _Owed:
    """Tasks of this process that the broker did not take, resent until it does.

    What a commit asked for is owed, not lost: the commit has happened and cannot be undone, so a
    broker that is down must not turn a saved write into a 500 (a client would retry it and do it
    twice). While anything is owed, new sends join the queue at once instead of making each
    request wait for a broker known to be down; one thread per process tries again every
    ``TASK_RESEND_SECONDS``. Everything a commit enqueues is idempotent (tasks are delivered at
    least once anyway), and periodic sweeps (the outbox's delivery) stand behind a process that
    dies still owing.
    """

    #: Distinct tasks kept at most; beyond, a send is dropped (and counted): periodic sweeps cover it.
    LIMIT = 1000

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.emptied = threading.Condition(self.lock)
        self.tasks: dict[str, tuple[Task, tuple[Any, ...], dict[str, Any]]] = {}
        self.failures: Counter[str] = Counter()  # sends the broker refused, per task name
        self.dropped: Counter[str] = Counter()  # sends given up because too much was owed
        self.resent: Counter[str] = Counter()  # owed sends the broker took later
        self.interval = 5.0  # seconds between resends; 0: no thread, the next send tries again
        self._thread: threading.Thread | None = None

    def owe(self, task: Task, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        key = json.dumps([task.name, args, kwargs], sort_keys=True, default=str)
        with self.lock:
            if key not in self.tasks and len(self.tasks) >= self.LIMIT:
                self.dropped[task.name] += 1
                return
            self.tasks.setdefault(key, (task, tuple(args), dict(kwargs)))
            if self.interval > 0 and (self._thread is None or not self._thread.is_alive()):
                # Also after a fork: the parent's thread does not exist in the child.
                self._thread = threading.Thread(target=self._resend_until_taken, name="task-resend", daemon=True)
                self._thread.start()

    def _resend_until_taken(self) -> None:
        while True:
            time.sleep(self.interval)
            resend_owed_tasks()
            with self.lock:  # owe() starts a new thread once this one is gone, never in between
                if not self.tasks:
                    self._thread = None
                    return

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            return {
                "owed": len(self.tasks),
                "failures": dict(self.failures),
                "dropped": dict(self.dropped),
                "resent": dict(self.resent),
            }


_owed = _Owed()


def send_after_commit(task: Task, args: tuple[Any, ...] = (), kwargs: dict[str, Any] | None = None) -> bool:
    """Hand ``task`` to the broker (or run it, without one); never raises: True if it was taken.

    A refusal is logged (task name and error type only), counted (:func:`task_send_counts`) and
    owed: resent by this process once the broker takes tasks again.
    """
    kwargs = kwargs or {}
    if _owed.tasks and _owed.interval > 0:
        # The broker failed lately: queue behind what is owed rather than make this request wait
        # for a broker known to be down (connecting may take seconds); the thread tries for all.
        _owed.owe(task, args, kwargs)
        return False
    try:
        task.apply_async(args=args, kwargs=kwargs)
    except Exception as error:  # kombu's OperationalError, a socket error, anything: the commit stands
        with _owed.lock:
            _owed.failures[task.name] += 1
        log.warning(
            "task not enqueued after commit; owed and resent later",
            extra={"task": task.name, "error": type(error).__name__, "pid": os.getpid()},
        )
        _owed.owe(task, args, kwargs)
        return False
    if _owed.tasks:  # no resend thread (TASK_RESEND_SECONDS=0): the broker is back, the owed follow
        resend_owed_tasks()
    return True


def resend_owed_tasks() -> int:
    """Try once to send everything this process owes; how many the broker took.

    The resend thread calls this; tests call it to drive the resending step by step.
    """
    with _owed.lock:
        owed = list(_owed.tasks.items())
    taken = 0
    for key, (task, args, kwargs) in owed:
        try:
            task.apply_async(args=args, kwargs=kwargs)
        except Exception as error:
            log.info("owed task still not enqueued", extra={"task": task.name, "error": type(error).__name__})
            return taken  # the broker is still down: the rest waits for the next try
        with _owed.lock:
            _owed.tasks.pop(key, None)
            _owed.resent[task.name] += 1
            if not _owed.tasks:
                _owed.emptied.notify_all()
        taken += 1
    if taken:
        log.warning("owed tasks enqueued", extra={"count": taken, "pid": os.getpid()})
    return taken


def wait_until_nothing_owed(timeout: float) -> bool:
    """Wait (at most ``timeout`` seconds) until this process owes the broker nothing; False if it
    still does (tests wait for the resend thread with it)."""
    with _owed.emptied:
        return _owed.emptied.wait_for(lambda: not _owed.tasks, timeout)


def task_send_counts() -> dict[str, Any]:
    """This process's counts: tasks owed now, and sends refused, dropped and resent by task name."""
    return _owed.snapshot()


def _task_send_samples() -> list[Sample]:
    counts, pid = task_send_counts(), str(os.getpid())
    samples = [Sample("shouwang_tasks_owed", "Tasks this process owes the broker (refused, to be resent)",
                      counts["owed"], labels={"pid": pid})]
    for key, help in (
        ("failures", "Task sends the broker refused after a commit (the write itself stood)"),
        ("dropped", "Task sends given up because too many were owed (periodic sweeps cover them)"),
        ("resent", "Owed task sends the broker took later"),
    ):
        samples += [
            Sample(f"shouwang_task_sends_{key}_total", help, value, "counter", {"task": task, "pid": pid})
            for task, value in sorted(counts[key].items())
        ]
    return samples


register_gauges(_task_send_samples)


@sa.event.listens_for(orm.Session, "after_soft_rollback")
def _drop_pending(session: orm.Session, previous_transaction: orm.SessionTransaction) -> None:
    if previous_transaction.parent is None:
        session.info.pop(_PENDING_KEY, None)


# --- request ids and outcomes: the same in a worker and in-process ---------------------------------

#: The message header that carries the enqueuing request's id to the task (core/logs.py).
REQUEST_ID_HEADER = "shouwang_request_id"

TASK_OUTCOMES = PrometheusCounter(
    "shouwang_celery_tasks", "Task runs by task name and outcome (success, failure, retry)", ["task", "state"]
)
_request_id_tokens: dict[str, contextvars.Token[str | None]] = {}


@before_task_publish.connect
def _send_request_id(headers: dict[str, Any] | None = None, **_: Any) -> None:
    request_id = current_request_id()
    if headers is not None and request_id is not None:
        headers.setdefault(REQUEST_ID_HEADER, request_id)


@task_prerun.connect
def _take_request_id(task_id: str | None = None, task: Task | None = None, **_: Any) -> None:
    """The task's lines carry the id of the request that enqueued it: from its message in a worker,
    from the context in-process (eager runs are not published); a fresh one for beat's runs."""
    sent = sane_request_id(getattr(task.request, REQUEST_ID_HEADER, None)) if task is not None else None
    request_id = sent or current_request_id() or new_request_id()
    if task_id is not None:
        _request_id_tokens[task_id] = request_id_var.set(request_id)


@task_postrun.connect
def _drop_request_id(task_id: str | None = None, **_: Any) -> None:
    token = _request_id_tokens.pop(task_id, None) if task_id is not None else None
    if token is not None:
        request_id_var.reset(token)


@task_success.connect
def _count_success(sender: Task | None = None, **_: Any) -> None:
    TASK_OUTCOMES.labels(getattr(sender, "name", "unknown"), "success").inc()


@task_failure.connect
def _count_failure(sender: Task | None = None, **_: Any) -> None:
    TASK_OUTCOMES.labels(getattr(sender, "name", "unknown"), "failure").inc()


@task_retry.connect
def _count_retry(sender: Task | None = None, **_: Any) -> None:
    TASK_OUTCOMES.labels(getattr(sender, "name", "unknown"), "retry").inc()


@setup_logging.connect
def _json_logs_in_worker(loglevel: str | int | None = None, **_: Any) -> None:
    # Connected, so Celery leaves the root logger alone: a worker logs JSON lines as the web does.
    configure_logging(loglevel or "INFO")


@worker_process_init.connect
def _fresh_connections_in_child(**_: Any) -> None:
    # A forked pool child must not share the parent's pooled database connections.
    if celery.flask_app is not None:
        with celery.flask_app.app_context():
            db.engine.dispose(close=False)


@celery.task(name="core.ping")
def ping() -> str:
    """Round trip through the broker and a worker; touches nothing (``celery -A worker call core.ping``)."""
    return "pong"


@periodic("IDEMPOTENCY_PURGE_MINUTES")
@celery.task(name="core.purge_idempotency_records")
def purge_idempotency_records_task() -> int:
    """Forget Idempotency-Key records older than IDEMPOTENCY_TTL_HOURS; returns how many."""
    return purge_idempotency_records()


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
