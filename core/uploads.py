"""Bodies larger than MAX_CONTENT_LENGTH for the few routes that take uploads.

Every request over MAX_CONTENT_LENGTH (1 MiB) is refused with 413 before any view runs (app.py),
unless its view is decorated with :func:`upload_body_limit`, which names a config key holding a
larger limit; the wrapper also raises werkzeug's own limit for bodies sent without a Content-Length.
Put it right under ``@blp.route``, above ``@auth_required`` and ``@idempotent``: the idempotency
key's fingerprint reads the body before the view does.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from flask import Flask, current_app, request

F = TypeVar("F", bound=Callable[..., Any])

BODY_LIMIT_ATTRIBUTE = "max_content_length_config"
#: Room for the multipart envelope (boundaries, headers, small text fields) around the file.
MULTIPART_OVERHEAD = 64 * 1024


def upload_body_limit(config_key: str) -> Callable[[F], F]:
    """Let this route take bodies up to ``config[config_key]`` plus the multipart envelope."""

    def decorator(func: F) -> F:
        @wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            request.max_content_length = body_limit(config_key)
            return func(*args, **kwargs)

        setattr(wrapper, BODY_LIMIT_ATTRIBUTE, config_key)
        return wrapper  # type: ignore[return-value]

    return decorator


def body_limit(config_key: str) -> int:
    return int(current_app.config[config_key]) + MULTIPART_OVERHEAD


def request_body_limit(app: Flask) -> int:
    """The largest body the endpoint of the current request accepts."""
    view = app.view_functions.get(request.endpoint or "")
    key = getattr(view, BODY_LIMIT_ATTRIBUTE, None)
    return body_limit(key) if key else int(app.config["MAX_CONTENT_LENGTH"])
