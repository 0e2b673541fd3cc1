"""What every task run reports, in a worker and in the in-process runner alike: the id of the
request that enqueued it (carried in the message's headers, so the task's log lines carry it too),
its outcome as a Prometheus counter, and JSON log lines in a worker as on the web.

Celery's signals are global: connecting here covers every task of every package. Imported by
:mod:`core.tasks`, so the handlers are connected wherever tasks exist.
"""

from __future__ import annotations

import contextvars
from typing import Any

from celery import Task
from celery.signals import (
    before_task_publish,
    setup_logging,
    task_failure,
    task_postrun,
    task_prerun,
    task_retry,
    task_success,
)
from prometheus_client import Counter as PrometheusCounter

from core.logs import configure_logging, current_request_id, new_request_id, request_id_var, sane_request_id

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
