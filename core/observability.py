"""Each request's id, access log line and request metrics, around the whole application.

A WSGI middleware, outermost, so it sees what a client sees: the final status (after the commit
at the end of the request, error handlers and the 413 refused before any work), and a duration
that covers all of it. The request id (:mod:`core.logs`) is set for the whole request, so every
line logged while it is served, and every task it runs in-process or enqueues, carries it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

from flask import Flask, request, request_started
from prometheus_client import Counter, Histogram

from core.logs import new_request_id, request_id_var, sane_request_id

access_log = logging.getLogger("shouwang.access")

REQUEST_ID_HEADER = "X-Request-ID"
_ROUTE_KEY = "shouwang.route"
#: The route label of a request that matched no rule (404, 405): never the raw path.
UNMATCHED = "unmatched"
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

HTTP_REQUESTS = Counter(
    "shouwang_http_requests", "HTTP requests answered, by method, route rule and status",
    ["method", "route", "status"],
)  # fmt: skip
# By route and method, not status: a status per route would multiply the buckets for little.
HTTP_DURATION = Histogram(
    "shouwang_http_request_duration_seconds",
    "Time to answer an HTTP request (until its status and headers), by method and route rule",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)

#: The two metrics' children by (method, route, status), taken once: ``labels()`` checks and
#: converts its values and takes the metric's lock on every call. Methods, routes and statuses
#: are few (unknown methods and paths are one label each).
_children: dict[tuple[str, str, int], tuple[Any, Any]] = {}

StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


class RequestObserver:
    """Wraps a WSGI app: request id in and out, one access log line and the request metrics."""

    def __init__(self, wsgi_app: WSGIApp) -> None:
        self.wsgi_app = wsgi_app

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        request_id = sane_request_id(environ.get("HTTP_X_REQUEST_ID")) or new_request_id()
        token = request_id_var.set(request_id)
        started = time.perf_counter()
        status = [500]  # what is counted if the app raises before answering

        def start_with_id(status_line: str, headers: list[tuple[str, str]], *exc_info: Any) -> Any:
            status[0] = int(status_line.split(" ", 1)[0])
            headers = [(name, value) for name, value in headers if name.lower() != "x-request-id"]
            return start_response(status_line, [*headers, (REQUEST_ID_HEADER, request_id)], *exc_info)

        try:
            return self.wsgi_app(environ, start_with_id)
        finally:
            self._record(environ, status[0], time.perf_counter() - started)
            request_id_var.reset(token)

    @staticmethod
    def _record(environ: dict[str, Any], status: int, seconds: float) -> None:
        method = environ.get("REQUEST_METHOD", "")
        method = method if method in _METHODS else "other"  # a label per invented method would never end
        route = environ.get(_ROUTE_KEY) or UNMATCHED
        children = _children.get((method, route, status))
        if children is None:
            children = HTTP_REQUESTS.labels(method, route, str(status)), HTTP_DURATION.labels(method, route)
            _children[(method, route, status)] = children
        children[0].inc()
        children[1].observe(seconds)
        # The path, never the query string (cursors, search terms); personal data in a path is
        # masked by the log formatter.
        path = (environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", ""))[:512]
        access_log.info(
            "request",
            extra={"method": method, "route": route, "path": path, "status": status,
                   "duration_ms": round(seconds * 1000, 1)},
        )  # fmt: skip


def _note_route(sender: Flask, **_: Any) -> None:
    # The rule, not the path, labels the metrics: /shifts/<int:shift_id>, not one series per shift.
    if request.url_rule is not None:
        request.environ[_ROUTE_KEY] = request.url_rule.rule


def init_observability(app: Flask) -> None:
    """Wrap ``app`` (call after any other WSGI middleware, so this one is outermost)."""
    app.wsgi_app = RequestObserver(app.wsgi_app)  # type: ignore[method-assign]
    request_started.connect(_note_route, app)
