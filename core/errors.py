"""One error shape everywhere: RFC 9457 ``application/problem+json``.

Services raise :class:`ApiError` (or a subclass); routes never build error responses by hand. Every
HTTP exception, including unknown routes, JWT failures and rate limits, goes through
:func:`problem_response`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from http import HTTPStatus
from typing import Any

from flask import Flask, Response, current_app, json
from prometheus_client import Counter
from sqlalchemy.exc import DataError, DBAPIError, InterfaceError, OperationalError
from werkzeug.exceptions import HTTPException, InternalServerError
from werkzeug.routing import IntegerConverter, Map

from core import i18n

PROBLEM_MIMETYPE = "application/problem+json"
#: Largest id or integer PostgreSQL's ``integer`` holds.
MAX_DB_INT = 2**31 - 1
PROBLEM_TYPE_BASE = "https://shouwang.example/problems/"

log = logging.getLogger(__name__)

_CODE_BY_STATUS = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_failed",
    429: "too_many_requests",
    503: "service_unavailable",
}


class ApiError(Exception):
    """A failure the client can act on. ``detail`` is English; it is shown translated.

    ``keeps_changes``: the changes the request made before the refusal are committed with the error
    answer (rare: a refusal that must leave a trace; see core/transactions.py).
    """

    status = 400
    code = "bad_request"
    keeps_changes = False

    def __init__(
        self,
        detail: str | None = None,
        *,
        code: str | None = None,
        status: int | None = None,
        errors: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        keeps_changes: bool | None = None,
    ) -> None:
        super().__init__(detail or code or self.code)
        self.detail = detail
        if code:
            self.code = code
        if status:
            self.status = status
        self.errors = errors
        self.headers = headers or {}
        if keeps_changes is not None:
            self.keeps_changes = keeps_changes


class ValidationFailed(ApiError):
    status = 422
    code = "validation_failed"


class Unauthorized(ApiError):
    status = 401
    code = "unauthorized"


class Forbidden(ApiError):
    status = 403
    code = "forbidden"


class OutOfScope(Forbidden):
    code = "out_of_scope"


class NotFound(ApiError):
    status = 404
    code = "not_found"


class Conflict(ApiError):
    status = 409
    code = "conflict"


def problem_response(
    status: int,
    code: str,
    detail: str | None = None,
    errors: Any = None,
    headers: dict[str, str] | None = None,
) -> Response:
    language = i18n.current_language()
    title = i18n.title_for(code, language)
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE_BASE + code,
        "title": title,
        "status": status,
        "detail": i18n.translate(detail, language) if detail else title,
        "code": code,
    }
    if errors:
        body["errors"] = i18n.translate_errors(errors, language)
    response = current_app.response_class(
        json.dumps(body, ensure_ascii=False), status=status, mimetype=PROBLEM_MIMETYPE
    )
    response.headers["Content-Language"] = language
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def _flatten_webargs_messages(messages: Any) -> tuple[str | None, Any]:
    """webargs nests errors by location ({"json": {...}}); clients want fields at the top."""
    if not isinstance(messages, dict):
        return None, messages
    merged: dict[str, Any] = {}
    for location, fields in messages.items():
        if isinstance(fields, dict):
            merged.update(fields)
        else:
            merged[f"_{location}"] = fields
    return None, merged


def handle_http_exception(error: HTTPException) -> Response:
    status = error.code or 500
    if status >= 500:
        return handle_unexpected(error)
    data = getattr(error, "data", None) or {}
    messages = data.get("messages") or data.get("errors")
    headers = dict(data.get("headers") or {})
    if status == 400 and messages and "json" in messages and not isinstance(messages["json"], dict):
        return problem_response(400, "malformed_json", "Invalid JSON body.", headers=headers)
    code = _CODE_BY_STATUS.get(status, "bad_request")
    valid_methods = getattr(error, "valid_methods", None)
    if status == 405 and valid_methods:
        headers["Allow"] = ", ".join(valid_methods)
    errors = None
    if messages:
        _, errors = _flatten_webargs_messages(messages)
    detail = data.get("message")
    return problem_response(status, code, detail, errors, headers)


def handle_api_error(error: ApiError) -> Response:
    if error.keeps_changes:
        from core.transactions import keep_changes_on_error  # core.transactions needs the extensions

        keep_changes_on_error()
    return problem_response(error.status, error.code, error.detail, error.errors, error.headers)


def handle_unexpected(error: Exception) -> Response:
    original = getattr(error, "original_exception", None) or error
    if not isinstance(original, HTTPException):
        log.exception("unhandled error", exc_info=original)
    return problem_response(500, "internal_error")


def handle_data_error(error: DataError) -> Response:
    """A value the database refuses (out of range, malformed) that validation let through.

    Schemas should catch these first; this keeps a missed case a client error, not a 500.
    """
    # The type only: the driver's message quotes the value, which may be personal data.
    log.warning("database refused a value: %s", type(error.orig).__name__)
    return problem_response(422, "validation_failed", "A value is out of range or malformed.")


def handle_database_unavailable(error: OperationalError) -> Response:
    """The database went away (restart, failover, lock timeout): the client should retry shortly."""
    log.warning("database unavailable: %s", type(error.orig).__name__)
    return problem_response(503, "service_unavailable", headers={"Retry-After": "1"})


COMMIT_OUTCOME_UNKNOWN = i18n.N_(
    "The connection to the database was lost while saving: the change may or may not have been "
    "saved. Retry with the same Idempotency-Key to get its outcome."
)
i18n.register_titles(i18n.title("commit_outcome_unknown", "Outcome unknown, please retry"))
i18n.register_messages(COMMIT_OUTCOME_UNKNOWN)


COMMITS_OUTCOME_UNKNOWN = Counter("shouwang_commit_outcome_unknown", "Commits whose connection was lost (answered 503)")


def commit_failure_response(error: DBAPIError) -> Response | None:
    """The answer when COMMIT itself failed for want of the database (None: not that kind of error).

    A connection lost during COMMIT leaves the outcome unknown (the server may have committed before
    the answer was lost): 503 ``commit_outcome_unknown`` with Retry-After, so the client retries,
    and with its Idempotency-Key gets the first response if it was saved (the key's record commits
    with the change) or a fresh run if not. Other operational failures (serialisation, deadlock,
    a database shutting down) rolled back: 503 ``service_unavailable``, retry as well.
    """
    if not (error.connection_invalidated or isinstance(error, OperationalError | InterfaceError)):
        return None
    headers = {"Retry-After": "1"}
    if error.connection_invalidated:
        log.warning("connection lost during commit: outcome unknown (%s)", type(error.orig).__name__)
        COMMITS_OUTCOME_UNKNOWN.inc()
        return problem_response(503, "commit_outcome_unknown", COMMIT_OUTCOME_UNKNOWN, headers=headers)
    log.warning("commit failed: %s", type(error.orig).__name__)
    return problem_response(503, "service_unavailable", headers=headers)


class BoundedIntConverter(IntegerConverter):
    """``<int:...>`` limited to PostgreSQL's integer range."""

    def __init__(self, map: Map, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("max", MAX_DB_INT)
        super().__init__(map, *args, **kwargs)


def register_error_handlers(app: Flask) -> None:
    app.register_error_handler(ApiError, handle_api_error)
    app.register_error_handler(DataError, handle_data_error)
    app.register_error_handler(OperationalError, handle_database_unavailable)
    app.register_error_handler(HTTPException, handle_http_exception)
    app.register_error_handler(InternalServerError, handle_unexpected)
    app.register_error_handler(Exception, handle_unexpected)


def error_docs(blp: Any) -> Callable[..., Callable[[Any], Any]]:
    """A decorator factory for ``blp``: ``@errors(403, 404)`` documents those problem+json responses
    (the components ShouwangApi registers by status name) on a view."""

    def errors(*statuses: int) -> Callable[[Any], Any]:
        def decorator(func: Any) -> Any:
            for status in statuses:
                func = blp.alt_response(status, response=HTTPStatus(status).name)(func)
            return func

        return decorator

    return errors
