"""Structured logs: one JSON object per line, each carrying the request id, none carrying personal data.

Every line has ``time``, ``level``, ``logger``, ``message``, ``request_id`` (the id of the HTTP
request, or of the task run, that wrote it; ``null`` outside both) and ``pid``, plus the ``extra``
fields of the call. A request's id comes from a sane ``X-Request-ID`` header or is made here
(:mod:`core.observability` sets it and returns it in the response); tasks the request enqueues
carry it in their message headers, so a worker's lines for that task have the same id
(:mod:`core.tasks`).

No personal data: our own log calls pass counts, ids, names of things and error types, never
phone numbers, ID numbers, tokens, passwords or positions. The formatter is the safety net behind
that rule, on every line after it is assembled (message, extras and traceback alike, which a
``logging.Filter`` could not reach without changing the record for every other handler): fields
named like personal data are dropped (positions are rounded to about 1 km), and text that looks
like an ID number, a mainland mobile number, a JWT, a bearer token, a push token or a position
(a pair of precise coordinates, or one named lat/lon) is masked.
"""

from __future__ import annotations

import contextvars
import logging
import re
import secrets
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, Any

from pythonjsonlogger.json import JsonFormatter

#: The id of the request (or task run) this context works for.
request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("shouwang_request_id", default=None)

#: An incoming X-Request-ID is kept when it is this: short, and nothing a log line or header could misread.
_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")

REDACTED = "[redacted]"

#: Fields dropped wherever they appear in a line (any case); positions are rounded instead.
_SECRET_FIELDS = frozenset(
    {"token", "push_token", "device_token", "access_token", "refresh_token", "password", "new_password",
     "id_number", "national_id", "phone", "mobile", "authorization", "secret"}
)  # fmt: skip
_POSITION_FIELDS = frozenset({"lat", "lon", "lng", "latitude", "longitude"})

# Order matters: JWTs and bearer tokens first (their parts may contain digit runs).
_PATTERNS: tuple[re.Pattern[str], ...] = (
    # Authorization header values, whatever the token inside.
    re.compile(r"(?i)\bbearer\s+[A-Za-z0-9._~+/=-]+"),
    # JWTs: three base64url parts, the first two JSON objects (so starting "eyJ").
    re.compile(r"\beyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*"),
    # FCM registration tokens ("<instance id>:APA91b…") and any long opaque token-like run.
    re.compile(r"[A-Za-z0-9_-]*:APA91[A-Za-z0-9_-]+"),
    re.compile(r"[A-Za-z0-9_-]{100,}"),
    # Mainland resident ID numbers: 17 digits and a check digit (or X).
    re.compile(r"(?<![0-9])[1-9][0-9]{16}[0-9Xx](?![0-9])"),
    # Positions in text: a pair of precise decimals ("40.655123,109.845678", "(109.84 40.65)"),
    # or one named as such ("lat=40.655123", "'lon': 109.8"). A lone decimal is left alone.
    re.compile(r"-?[0-9]{1,3}\.[0-9]{2,}\s*[, ]\s*-?[0-9]{1,3}\.[0-9]{2,}"),
    re.compile(r"(?i)\b(?:lat|lon|lng|latitude|longitude)\b['\"]?\s*[:=]\s*-?[0-9]+\.[0-9]+"),
    # Mainland mobile numbers, with or without +86 / 86.
    re.compile(r"(?<![0-9])(?:\+?86[- ]?)?1[3-9][0-9]{9}(?![0-9])"),
)


def redact_text(text: str) -> str:
    """``text`` with everything that looks like personal data or a credential masked."""
    for pattern in _PATTERNS:
        text = pattern.sub(REDACTED, text)
    return text


def redact(value: Any, key: str | None = None) -> Any:
    """A log field's value made safe: by its name first (dropped or rounded), then by its content."""
    if key is not None:
        name = key.lower()
        if name in _SECRET_FIELDS:
            return REDACTED
        if name in _POSITION_FIELDS:
            # About 1 km: enough to tell the district, not the doorstep.
            return round(value, 2) if isinstance(value, int | float) and not isinstance(value, bool) else REDACTED
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, dict):
        return {k: redact(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [redact(v) for v in value]
    if isinstance(value, int | float | bool) or value is None:
        return value
    return redact_text(str(value))


def sane_request_id(candidate: str | None) -> str | None:
    """``candidate`` if it can serve as a request id as it is, else None.

    Bounded, of a safe charset, and nothing the redaction would mask (a client sending its phone
    number as an id would otherwise see it in the logs, or lines whose id no longer matches)."""
    if candidate and _SANE_REQUEST_ID.fullmatch(candidate) and redact_text(candidate) == candidate:
        return candidate
    return None


#: Of the patterns, only the phone and ID numbers can match hex text this short, and both need a
#: run of 11 digits or more: an id without one is left whole, so the full check is only for those.
_LONG_DIGIT_RUN = re.compile(r"[0-9]{11}")


def new_request_id() -> str:
    """A random id the redaction leaves whole: hex may hold a run of digits that reads as a phone
    number (about one id in a few thousand), which would be masked in the lines it should join."""
    while True:
        candidate = secrets.token_hex(16)
        if not _LONG_DIGIT_RUN.search(candidate) or redact_text(candidate) == candidate:
            return candidate


def current_request_id() -> str | None:
    return request_id_var.get()


@contextmanager
def request_id_context(request_id: str) -> Iterator[str]:
    """Lines logged inside carry ``request_id``."""
    token = request_id_var.set(request_id)
    try:
        yield request_id
    finally:
        request_id_var.reset(token)


class RequestIdFilter(logging.Filter):
    """Puts the current request id on each record (``None`` outside a request or task)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get()
        return True


#: What the logging module writes into every line from our own code: the time in our date format,
#: a level's name, a logger's name. Redacting them never changed a thing and cost a third of an
#: access log line (bench/README.md, issue 19), so a value that is one of these is left as it is
#: (one lookup or match, where redaction runs every pattern); anything else in these fields, an
#: ``extra`` of the same name say, is redacted as usual.
_TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}[+-][0-9]{4}")


def _written_by_logging(key: str, value: Any) -> bool:
    if not isinstance(value, str):
        return False
    if key == "time":
        return _TIME.fullmatch(value) is not None
    if key == "level":
        return value in logging.getLevelNamesMapping()
    if key == "logger":
        return value == "root" or value in logging.Logger.manager.loggerDict
    return False


class RedactingJsonFormatter(JsonFormatter):
    """One JSON object per line, every field but the time, level and logger name passed through
    :func:`redact` before it is written."""

    def __init__(self) -> None:
        super().__init__(
            "%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s %(process)s",
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger", "process": "pid"},
            datefmt="%Y-%m-%dT%H:%M:%S%z",
            json_ensure_ascii=False,
        )

    def process_log_record(self, log_data: dict[str, Any]) -> dict[str, Any]:
        return {
            key: value if _written_by_logging(key, value) else redact(value, key)
            for key, value in super().process_log_record(log_data).items()
        }


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is when a line is written (test runners swap it)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> IO[str]:
        return sys.stderr

    @stream.setter
    def stream(self, _: IO[str]) -> None:
        pass


def json_handler(stream: IO[str] | None = None) -> logging.Handler:
    """The handler every process logs through: JSON lines with the request id, redacted.

    ``stream``: where to write (default: standard error, as gunicorn and Celery expect)."""
    handler: logging.Handler = _StderrHandler() if stream is None else logging.StreamHandler(stream)
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(RedactingJsonFormatter())
    handler.set_name("shouwang-json")
    return handler


def configure_logging(level: str | int = "INFO") -> None:
    """Send the root logger's lines to standard error as JSON (once per process; idempotent)."""
    root = logging.getLogger()
    if not any(handler.get_name() == "shouwang-json" for handler in root.handlers):
        root.addHandler(json_handler())
    root.setLevel(level.upper() if isinstance(level, str) else level)
    # Werkzeug's development server logs each request line with its query string; ours
    # (core/observability.py) replaces it, without the query string.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
