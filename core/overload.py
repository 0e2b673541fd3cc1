"""Shedding requests that waited in the queue longer than their client waits, or behind a
standing queue.

A sync gunicorn worker takes requests from the listen backlog in order, and cannot tell whether
the client is still there. Past a node's capacity the backlog grows, and the workers spend their
time on requests whose phones gave up long ago: in the 10,000-volunteer shift-change run
(bench/README.md) the longest answer took 266 s, against the phones' 30 s. Every answer then comes
too late, and nobody is served.

The balancer in front knows when it passed a request on, and says so in ``X-Request-Start``
(nginx: ``proxy_set_header X-Request-Start "t=${msec}";``). Two rules read it, before any work:

- **The limit.** A request that waited longer than ``REQUEST_QUEUE_TIMEOUT_SECONDS`` is shed.
- **A standing queue** (CoDel's idea, as in network queues). A limit alone keeps an overloaded
  node's queue just under the limit: every phone then waits about that long for every answer,
  as the shift-change run with the limit alone suggested (p50 of 21 s at a 20 s limit). So once every
  request has waited longer than ``REQUEST_QUEUE_TARGET_MS`` for longer than
  ``REQUEST_QUEUE_INTERVAL_MS`` in a row, each one that waited longer than the target is shed,
  until one arrives within the target. Shedding costs a fraction of serving, so the queue
  drains within moments, and what is served is served promptly. A burst shorter than the interval
  is served as it comes. Off by default: it needs a balancer that stamps a request once it has read
  all of it (nginx's buffering), or a sync worker's wait for a slow client's bytes counts as queue
  (the shift-change run without such a balancer, bench/README.md "Shedding under overload").

Shed means 503 ``overloaded`` with ``Retry-After``: nothing is written, so a phone's retry with the
same ``Idempotency-Key`` is safe. A request without the header, or with one that cannot be read or
lies in the future (clocks of two machines), is served as usual and leaves the queue's state as
it was: a client that forges an old time only gets itself a 503. The waits are measured against
the balancer's clock, so balancer and nodes keep time (NTP): a node whose clock runs ahead adds
its lead to every wait.

The probes (``/healthz``, ``/readyz``) are never shed, stamped or not. A balancer that probes
through the same queue would otherwise take an overloaded node out of rotation, and hand its share
to the other nodes at the moment they are busiest too: one slow node would empty the pool. An
overloaded node sheds its requests itself; it stays in rotation, and serves what it can.

The queue's state is each worker process's own (one per process, as each process draws from the
same backlog and sees the same waits).
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
    "Requests answered 503 overloaded before any work: waited past REQUEST_QUEUE_TIMEOUT_SECONDS (reason "
    "limit), or past REQUEST_QUEUE_TARGET_MS behind a standing queue (reason standing_queue)",
    ["reason"],
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


class StandingQueue:
    """Whether the waits have stayed above a target for longer than an interval (one per process).

    ``observe`` is told each stamped request's wait in turn, and answers True for a request to
    shed: one that waited longer than the target, once the waits have stayed above it for longer
    than the interval. A wait within the target ends the standing queue.
    """

    def __init__(self) -> None:
        self.above_since: float | None = None  # when the waits went above the target, while they are

    def observe(self, waited: float, now: float, target: float, interval: float) -> bool:
        if target <= 0:
            return False
        if waited <= target:
            self.above_since = None
            return False
        if self.above_since is None:
            self.above_since = now
            return False
        return now - self.above_since > interval


def init_overload(app: Flask) -> None:
    """Shed requests that waited too long, before any other work (first of the before-request hooks)."""
    limit = app.config["REQUEST_QUEUE_TIMEOUT_SECONDS"]
    target_ms, interval_ms = app.config["REQUEST_QUEUE_TARGET_MS"], app.config["REQUEST_QUEUE_INTERVAL_MS"]
    if limit < 0 or target_ms < 0 or interval_ms < 0:
        raise ValueError(
            "REQUEST_QUEUE_TIMEOUT_SECONDS, REQUEST_QUEUE_TARGET_MS and REQUEST_QUEUE_INTERVAL_MS must be 0 (off) or more"
        )
    if limit == 0 and target_ms == 0:
        return
    standing = StandingQueue()

    def shed_if_queued_too_long() -> Response | None:
        header = request.headers.get(QUEUE_START_HEADER)
        if header is None or request.blueprint == PROBE_BLUEPRINT:
            return None
        since = queued_at(header)
        now = time.time()
        if since is None or since > now:
            return None
        if waited_too_long(header, now, current_app.config["REQUEST_QUEUE_TIMEOUT_SECONDS"]):
            reason = "limit"
        elif standing.observe(
            now - since,
            now,
            current_app.config["REQUEST_QUEUE_TARGET_MS"] / 1000,
            current_app.config["REQUEST_QUEUE_INTERVAL_MS"] / 1000,
        ):
            reason = "standing_queue"
        else:
            return None
        REQUESTS_SHED.labels(reason=reason).inc()
        return problem_response(503, "overloaded", headers={"Retry-After": str(RETRY_AFTER_SECONDS)})

    # First of all: not even the CSRF check should be spent on a request nobody waits for.
    app.before_request_funcs.setdefault(None, []).insert(0, shed_if_queued_too_long)
