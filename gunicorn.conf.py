"""gunicorn's settings for Shouwang (`make serve`; gunicorn also reads this file by default when
started from the repository's root).

- Logs: gunicorn's own lines in the app's JSON format (core/logs.py); its access log stays off,
  because the app writes one JSON access line per request itself (core/observability.py), with
  the route rule, the request id and no query string.
- Metrics: every worker writes its series to files in ``PROMETHEUS_MULTIPROC_DIR`` and a scrape
  adds them all up (core/metrics.py). Unset, a fresh temporary folder is used (removed at exit);
  set, it must be a folder for this server alone: its files are cleared at start, since a
  previous run's counts would be added to this one's. A worker that exits is marked dead, so
  the gauges of live workers are not mixed with those of dead ones.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

# Set before anything imports prometheus_client: the variable, read at its import, picks
# file-backed values (so prometheus_client is imported below only inside the hooks).
_made_metrics_dir = not os.environ.get("PROMETHEUS_MULTIPROC_DIR")
if _made_metrics_dir:
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="shouwang-prometheus-")

accesslog = None  # the app logs each request (JSON); gunicorn's line would repeat it with the query string
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info").lower()

_json_handler = {
    "class": "logging.StreamHandler",
    "formatter": "json",
    "filters": ["request_id"],
    "stream": "ext://sys.stderr",
}
logconfig_dict: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": "core.logs.RedactingJsonFormatter"}},
    "filters": {"request_id": {"()": "core.logs.RequestIdFilter"}},
    "handlers": {"gunicorn_json": _json_handler},
    "loggers": {
        "gunicorn.error": {"level": loglevel.upper(), "handlers": ["gunicorn_json"], "propagate": False},
        "gunicorn.access": {"level": "INFO", "handlers": [], "propagate": False},
    },
    # The root logger is the app's: create_app adds its JSON handler in each worker.
    "root": {"level": loglevel.upper(), "handlers": []},
}


def on_starting(server: Any) -> None:
    folder = Path(os.environ["PROMETHEUS_MULTIPROC_DIR"])
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob("*.db"):
        stale.unlink()


def child_exit(server: Any, worker: Any) -> None:
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server: Any) -> None:
    if _made_metrics_dir:
        shutil.rmtree(os.environ["PROMETHEUS_MULTIPROC_DIR"], ignore_errors=True)


def post_worker_init(worker: Any) -> None:
    # The app is loaded in the worker (no preload): settle its heap now, as Celery's children do.
    from core.tasks import settle_heap

    settle_heap()
