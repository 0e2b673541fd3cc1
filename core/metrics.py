"""``GET /metrics``: what an operator watches, in the Prometheus text format (prometheus_client).

Not part of the API (not in the OpenAPI document) and not public: it answers clients on this
machine's loopback that came through no proxy, or a request with ``Authorization: Bearer
<METRICS_TOKEN>`` when that setting is set; anyone else gets the 404 of a path that does not
exist. Counts only, never personal data.

Two kinds of series:

- Counters, histograms and gauges that code updates as things happen (``prometheus_client``
  objects declared next to that code: requests in :mod:`core.observability`, task outcomes in
  :mod:`core.tasks`, push outcomes in :mod:`notifications.delivery.service`, the pool below).
  Under gunicorn every worker writes them to files in ``PROMETHEUS_MULTIPROC_DIR`` and whichever
  worker answers the scrape adds them all up (``gunicorn.conf.py`` sets that up and marks dead
  workers); without that variable they live in this process's default registry.
- Samples that packages register with :func:`register_gauges`, read when scraped (in the
  scraping request's app context): the outbox's backlog from the database (the same whichever
  worker answers), and per-process state labelled ``pid`` (tasks this process owes the broker).
"""

from __future__ import annotations

import hmac
import ipaddress
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import prometheus_client
import sqlalchemy as sa
from flask import Flask, Response, current_app, request
from prometheus_client import CollectorRegistry, Gauge, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from werkzeug.exceptions import NotFound

from core.extensions import db

CONTENT_TYPE = prometheus_client.exposition.CONTENT_TYPE_PLAIN_0_0_4

# One series per thing counted: the *_created companions only double what a scrape carries.
prometheus_client.disable_created_metrics()


@dataclass(frozen=True)
class Sample:
    name: str
    help: str
    value: float
    kind: str = "gauge"  # or "counter"
    labels: dict[str, str] = field(default_factory=dict)


_gauges: list[Callable[[], Iterable[Sample]]] = []


def register_gauges(source: Callable[[], Iterable[Sample]]) -> None:
    """Call ``source`` on every scrape (in an app context) for samples of its own."""
    if source not in _gauges:
        _gauges.append(source)


def multiprocess_dir() -> str | None:
    """Where gunicorn's workers keep their series (None: one process, the default registry)."""
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


class RegisteredSamples(Collector):
    """The packages' :func:`register_gauges` sources, as metric families, read at scrape time."""

    def collect(self) -> Iterator[Metric]:
        families: dict[str, GaugeMetricFamily | CounterMetricFamily] = {}
        for source in _gauges:
            for sample in source():
                family = families.get(sample.name)
                if family is None:
                    kind = CounterMetricFamily if sample.kind == "counter" else GaugeMetricFamily
                    family = families[sample.name] = kind(sample.name, sample.help, labels=sorted(sample.labels))
                family.add_metric([sample.labels[key] for key in sorted(sample.labels)], sample.value)
        yield from families.values()


class _DefaultRegistry(Collector):
    """This process's default registry, inside a scrape's registry (no worker files to add up)."""

    def collect(self) -> Iterator[Metric]:
        yield from prometheus_client.REGISTRY.collect()


# --- the database pool ------------------------------------------------------------------------------

# livesum: under gunicorn the connections of all live workers, added up (a dead worker's are gone).
POOL_CHECKED_OUT = Gauge(
    "shouwang_db_pool_checked_out", "Database connections in use (all workers)", multiprocess_mode="livesum"
)
POOL_SIZE = Gauge(
    "shouwang_db_pool_size", "Database connections the pools keep open at most, overflow aside (all workers)",
    multiprocess_mode="livesum",
)  # fmt: skip
POOL_OVERFLOW = Gauge(
    "shouwang_db_pool_overflow",
    "Connections open beyond the pool size (negative: pool slots not opened yet; all workers)",
    multiprocess_mode="livesum",
)


_POOL_READINGS = ((POOL_CHECKED_OUT, "checkedout"), (POOL_SIZE, "size"), (POOL_OVERFLOW, "overflow"))
#: What this process (its id first) last wrote to each pool gauge: a gauge is written only when
#: its value changes (at every checkout and checkin the size and overflow rarely do, and each write
#: takes the gauge's lock, and under gunicorn writes the worker's file; bench/README.md, issue 19).
#: A forked worker has files of its own, so it writes everything once.
_pool_written: dict[Any, float] = {}


def record_pool_use(pool: Any) -> None:
    """Set the pool gauges from ``pool`` (a QueuePool has the numbers; other pool types do not)."""
    if _pool_written.get("pid") != os.getpid():
        _pool_written.clear()
        _pool_written["pid"] = os.getpid()
    for gauge, reading in _POOL_READINGS:
        read = getattr(pool, reading, None)
        if callable(read):
            value = read()
            if _pool_written.get(gauge) != value:
                gauge.set(value)
                _pool_written[gauge] = value


def _watch_pool(app: Flask) -> None:
    with app.app_context():
        engine = db.engine
    # Updated as connections come and go, so every worker's file holds its own pool's state. On
    # the engine, not its pool: a disposed engine's new pool keeps the listeners.
    sa.event.listen(engine, "checkout", lambda *_: record_pool_use(engine.pool))
    sa.event.listen(engine, "checkin", lambda *_: record_pool_use(engine.pool))
    record_pool_use(engine.pool)


# --- the endpoint -----------------------------------------------------------------------------------


def render_metrics() -> bytes:
    """Every series, as the answering process sees them (all workers' under gunicorn)."""
    registry = CollectorRegistry(auto_describe=False)
    directory = multiprocess_dir()
    if directory:
        MultiProcessCollector(registry, path=directory)
    else:
        registry.register(_DefaultRegistry())
    registry.register(RegisteredSamples())
    record_pool_use(db.engine.pool)
    return generate_latest(registry)


def scrape_allowed() -> bool:
    """A loopback client that came through no proxy, or the right bearer token."""
    expected = current_app.config.get("METRICS_TOKEN")
    if expected:
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), str(expected).encode()):
            return True
    # A balancer or proxy on this machine also connects from loopback: what it forwards is not local.
    if any(name in request.headers for name in ("X-Forwarded-For", "Forwarded", "X-Real-IP")):
        return False
    try:
        return ipaddress.ip_address(request.remote_addr or "").is_loopback
    except ValueError:
        return False


def init_metrics(app: Flask) -> None:
    def metrics() -> Response:
        if not scrape_allowed():
            raise NotFound()  # as if there were no such path
        return Response(render_metrics(), content_type=CONTENT_TYPE)

    app.add_url_rule("/metrics", "metrics", metrics, methods=["GET"])
    _watch_pool(app)
