"""Bodies larger than MAX_CONTENT_LENGTH for the few routes that take uploads.

Every request over MAX_CONTENT_LENGTH (1 MiB) is refused with 413 before any view runs (app.py),
unless its view is decorated with :func:`upload_body_limit`, which names a config key holding a
larger limit; the wrapper also raises werkzeug's own limit for bodies sent without a Content-Length.
Put it right under ``@blp.route``, above ``@auth_required`` and ``@idempotent``: the idempotency
key's fingerprint reads the body before the view does.

Downloads of stored images answer with :func:`image_response` and document themselves with
:func:`image_download_doc`, the same for every route that serves a photo.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from flask import Flask, Response, current_app, request

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
        return wrapper  # type: ignore[return-value]  # wraps(func): the signature F promises

    return decorator


def body_limit(config_key: str) -> int:
    return int(current_app.config[config_key]) + MULTIPART_OVERHEAD


def request_body_limit(app: Flask) -> int:
    """The largest body the endpoint of the current request accepts."""
    view = app.view_functions.get(request.endpoint or "")
    key = getattr(view, BODY_LIMIT_ATTRIBUTE, None)
    return body_limit(key) if key else int(app.config["MAX_CONTENT_LENGTH"])


#: Generic bytes: what a client that does not handle image types (a generated client reads only this
#: as binary) may ask for with ``Accept``; everyone else gets the image's own type.
OCTET_STREAM = "application/octet-stream"
IMAGE_TYPES = ("image/jpeg", "image/png")


def image_download_doc(description: str) -> dict[str, Any]:
    """``@blp.doc(**image_download_doc(...))``: one 200 listing each type the image may be sent as."""
    binary = {"schema": {"type": "string", "format": "binary"}}
    content = {media_type: binary for media_type in (*IMAGE_TYPES, OCTET_STREAM)}
    return {"responses": {"200": {"description": description, "content": content}}}


def image_response(data: bytes, content_type: str, cache_control: str) -> Response:
    """The image as its own type, or as ``application/octet-stream`` when the client prefers that."""
    if request.accept_mimetypes.best_match([content_type, OCTET_STREAM]) == OCTET_STREAM:
        content_type = OCTET_STREAM
    response = current_app.response_class(data, mimetype=content_type)
    response.headers["Cache-Control"] = cache_control
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response
