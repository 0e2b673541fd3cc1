"""Shedding requests that waited in the queue longer than their client waits.

A sync gunicorn worker takes requests from the listen backlog in order, and cannot tell whether
the client is still there. Past a node's capacity the backlog grows, and the workers spend their
time on requests whose phones gave up long ago: in the 10,000-volunteer shift-change run
(bench/README.md) the longest answer took 266 s, against the phones' 30 s. Every answer then comes
too late, and nobody is served.

The balancer in front knows when it passed a request on, and says so in ``X-Request-Start``
(nginx: ``proxy_set_header X-Request-Start "t=${msec}";``). A request that waited longer than
``REQUEST_QUEUE_TIMEOUT_SECONDS`` is answered 503 ``overloaded`` with ``Retry-After`` before any
work, so the workers reach the requests whose clients are still waiting. Nothing is written, so
a phone's retry with the same ``Idempotency-Key`` is safe. A request without the header, or with
one that cannot be read or lies in the future (clocks of two machines), is served as usual: a
client that forges an old time only gets itself a 503.

The probes (``/healthz``, ``/readyz``) are never shed, stamped or not. A balancer that probes
through the same queue would otherwise take an overloaded node out of rotation, and hand its share
to the other nodes at the moment they are busiest too: one slow node would empty the pool. An
overloaded node sheds its requests itself; it stays in rotation, and serves what it can.
"""

from __future__ import annotations

import time

from flask import Flask, Response, current_app, request
from prometheus_client import Counter

from core import i18n
from core.errors import problem_response

QUEUE_START_HEADER = "X-Request-Start"
#: How long a shed client should wait before trying again, in seconds.
RETRY_AFTER_SECONDS = 5
#: The load balancer's probes (core/health.py), answered whatever the queue.
PROBE_BLUEPRINT = "health"

REQUESTS_SHED = Counter(
    "shouwang_requests_shed",
    "Requests answered 503 overloaded: they waited in the queue longer than REQUEST_QUEUE_TIMEOUT_SECONDS",
)

i18n.register_titles(i18n.title("overloaded", "The service is overloaded; try again shortly"))


def queued_at(header: str) -> float | None:
    """The moment (Unix seconds) in an ``X-Request-Start`` value, or None when it cannot be read.

    Balancers write ``t=`` followed by seconds (nginx ``${msec}``: ``t=1765000000.123``),
    milliseconds (``t=1765000000123``) or microseconds (Apache ``%t``); which one is told by the size.
    """
    value = header.strip()
    if value.startswith("t="):
        value = value[2:]
    if not value or len(value) > 32:
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    if not number > 0 or number == float("inf"):
        return None
    if number >= 1e14:
        return number / 1_000_000
    if number >= 1e11:
        return number / 1000
    return number


def waited_too_long(header: str | None, now: float, limit_seconds: float) -> bool:
    """Whether a request that entered the queue at ``header`` has waited more than ``limit_seconds``
    at ``now`` (exactly the limit still counts as in time)."""
    if not header or limit_seconds <= 0:
        return False
    since = queued_at(header)
    return since is not None and now - since > limit_seconds


def init_overload(app: Flask) -> None:
    """Shed requests that waited too long, before any other work (first of the before-request hooks)."""
    limit = app.config["REQUEST_QUEUE_TIMEOUT_SECONDS"]
    if limit < 0:
        raise ValueError("REQUEST_QUEUE_TIMEOUT_SECONDS must be 0 (off) or more")
    if limit == 0:
        return

    def shed_if_queued_too_long() -> Response | None:
        header = request.headers.get(QUEUE_START_HEADER)
        if header is None or request.blueprint == PROBE_BLUEPRINT or not waited_too_long(
            header, time.time(), current_app.config["REQUEST_QUEUE_TIMEOUT_SECONDS"]
        ):
            return None
        REQUESTS_SHED.inc()
        return problem_response(503, "overloaded", headers={"Retry-After": str(RETRY_AFTER_SECONDS)})

    # First of all: not even the CSRF check should be spent on a request nobody waits for.
    app.before_request_funcs.setdefault(None, []).insert(0, shed_if_queued_too_long)
