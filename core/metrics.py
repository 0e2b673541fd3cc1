"""``GET /metrics``: what an operator watches, in the Prometheus text format (version 0.0.4).

Not part of the API (not in the OpenAPI document, no token): counts only, never personal data.
Keep it off the public balancer and let the monitoring system reach each node directly.

Counters (``increment``) are kept per process: with several gunicorn workers each answers with its
own, labelled ``pid``; sum them in the monitoring system (they also appear in the logs). Gauges
registered by packages (:func:`register_gauges`) are read from the database when scraped, so they
are the same whichever process answers.
"""

from __future__ import annotations

import os
import threading
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from flask import Flask, Response

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


@dataclass(frozen=True)
class Sample:
    name: str
    help: str
    value: float
    kind: str = "gauge"  # or "counter"
    labels: dict[str, str] = field(default_factory=dict)


_lock = threading.Lock()
_counters: Counter[tuple[str, tuple[tuple[str, str], ...]]] = Counter()
_help: dict[str, str] = {}
_gauges: list[Callable[[], Iterable[Sample]]] = []


def increment(name: str, help: str, **labels: str) -> None:
    """Add one to this process's counter ``name`` (with these labels)."""
    with _lock:
        _help[name] = help
        _counters[(name, tuple(sorted(labels.items())))] += 1


def register_gauges(source: Callable[[], Iterable[Sample]]) -> None:
    """Call ``source`` on every scrape (in an app context) for samples of its own."""
    if source not in _gauges:
        _gauges.append(source)


def samples() -> list[Sample]:
    pid = str(os.getpid())
    with _lock:
        counted = [
            Sample(name, _help[name], value, "counter", {**dict(labels), "pid": pid})
            for (name, labels), value in sorted(_counters.items())
        ]
    for source in _gauges:
        counted.extend(source())
    return counted


def render(items: Iterable[Sample]) -> str:
    lines: list[str] = []
    described: set[str] = set()
    for sample in items:
        if sample.name not in described:
            described.add(sample.name)
            lines += [f"# HELP {sample.name} {sample.help}", f"# TYPE {sample.name} {sample.kind}"]
        labels = ",".join(f'{key}="{_escape(value)}"' for key, value in sorted(sample.labels.items()))
        lines.append(f"{sample.name}{{{labels}}} {sample.value:g}" if labels else f"{sample.name} {sample.value:g}")
    return "\n".join(lines) + "\n"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def init_metrics(app: Flask) -> None:
    def metrics() -> Response:
        return Response(render(samples()), content_type=CONTENT_TYPE)

    app.add_url_rule("/metrics", "metrics", metrics, methods=["GET"])
