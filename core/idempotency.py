"""Idempotency keys for writes a phone may retry (DESIGN.md, API conventions).

A replay of the same key with the same request returns the first response; the same key with a
different request is 409. The stored response is written in the same transaction as the change it
describes, so a retry after a lost response can never apply the change twice.

Put :func:`idempotent` directly under ``@auth_required(...)`` (keys are per caller) and above
``@blp.arguments``/``@blp.response`` (it stores the finished response)::

    @blp.route("/swap-requests", methods=["POST"])
    @auth_required(Role.VOLUNTEER)
    @idempotent
    @blp.arguments(SwapProposalSchema)
    @blp.response(201, SwapRequestSchema)
    def propose_swap(data): ...

How concurrent requests with one key meet: the record is inserted before the view runs. On
PostgreSQL a second request's insert waits on the unique index until the first commits (then it
replays) or rolls back (then it runs itself); on SQLite every writer holds the database lock from
its first statement, so the second request starts only after the first has finished. Either way
nobody sees a record without its response, unless one was committed without one — which
:func:`idempotent` prevents when a view keeps its changes on an error (``keep_changes_on_error``):
then the error is stored and replayed like any other answer. ``idempotency_key_in_progress`` is
the safe answer should such a record ever be seen.
"""

from __future__ import annotations

import hashlib
import inspect
import re
from collections.abc import Callable
from copy import deepcopy
from datetime import datetime, timedelta
from functools import wraps
from typing import Any, TypeVar

import sqlalchemy as sa
from flask import Response, current_app, request
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from core import i18n
from core.auth import current_caller
from core.db import UTCDateTime, changes_kept_on_error, utcnow
from core.errors import ApiError, Conflict, ValidationFailed, handle_api_error
from core.extensions import db

F = TypeVar("F", bound=Callable[..., Any])

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
MAX_KEY_LENGTH = 200
_KEY_PATTERN = re.compile(r"[\x20-\x7e]{1,200}")
_INVALID_KEY = "Use 1 to 200 printable ASCII characters."

i18n.register_titles(
    {
        "idempotency_key_reused": (
            "幂等键已用于另一个请求",
            "Idempotency key already used for another request",
        ),
        "idempotency_key_in_progress": (
            "使用该幂等键的请求仍在处理中",
            "A request with this idempotency key is in progress",
        ),
    }
)
i18n.register_messages(
    {
        _INVALID_KEY: "请使用 1 到 200 个可打印的 ASCII 字符。",
        "This Idempotency-Key was already used for a different request.": (
            "该 Idempotency-Key 已用于另一个不同的请求。"
        ),
        "A request with this Idempotency-Key is still being processed; retry shortly.": (
            "使用该 Idempotency-Key 的请求仍在处理中，请稍后重试。"
        ),
    }
)

#: The header as documented on every decorated operation.
HEADER_PARAMETER = {
    "in": "header",
    "name": HEADER,
    "required": False,
    "description": "Any unique string (a UUID, say) chosen by the client for this write. A retry "
    "with the same key and the same request returns the first response (with "
    "`Idempotent-Replayed: true`) instead of doing it again; the same key with another request "
    "is 409 `idempotency_key_reused`. Keys are per user and kept for IDEMPOTENCY_TTL_HOURS.",
    "schema": {
        "type": "string",
        "minLength": 1,
        "maxLength": MAX_KEY_LENGTH,
        "pattern": "^[ -~]+$",
    },
}


class IdempotencyRecord(db.Model):
    __tablename__ = "idempotency_records"

    id: Mapped[int] = mapped_column(primary_key=True)
    # Keys are per caller: two users may well pick the same UUID-less key.
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(sa.String(200))
    method: Mapped[str] = mapped_column(sa.String(10))
    path: Mapped[str] = mapped_column(sa.String(500))
    # SHA-256 of method, path and body: tells a replay from a different request under the same key.
    request_hash: Mapped[str] = mapped_column(sa.String(64))
    status_code: Mapped[int | None] = mapped_column(sa.SmallInteger)
    response_body: Mapped[str | None] = mapped_column(sa.Text)
    content_type: Mapped[str | None] = mapped_column(sa.String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)

    __table_args__ = (
        sa.UniqueConstraint("user_id", "key", name="uq_idempotency_records_user_key"),
    )


# --- the decorator -----------------------------------------------------------------------------


def idempotent(func: F) -> F:
    """Honour an optional ``Idempotency-Key`` header on this write (see the module docstring)."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        key = request.headers.get(HEADER)
        if key is None:
            return func(*args, **kwargs)
        if not _KEY_PATTERN.fullmatch(key):
            raise ValidationFailed(errors={HEADER: [_INVALID_KEY]})
        record, replay = _claim(current_caller().user_id, key, request_fingerprint())
        if replay is not None:
            return replay
        try:
            response = current_app.make_response(func(*args, **kwargs))
        except ApiError as error:
            if not changes_kept_on_error():
                raise  # the whole request rolls back, the record with it: a retry runs again
            response = handle_api_error(error)
        except Exception:
            if changes_kept_on_error():
                _forget(record)
            raise
        # Whatever commits with the record is what a retry must see again; anything else rolls back.
        if response.status_code < 400 or changes_kept_on_error():
            _remember(record, response)
        return response

    _document(wrapper)
    wrapper.__doc__ = inspect.cleandoc(func.__doc__ or "") + (
        f"\n\nAccepts an `{HEADER}` header: a retry with the same key returns the first response."
    )
    return wrapper  # type: ignore[return-value]


def request_fingerprint() -> str:
    """SHA-256 of method, path with query string and body bytes, each length-prefixed."""
    digest = hashlib.sha256()
    target = request.path.encode() + (b"?" + request.query_string if request.query_string else b"")
    for part in (request.method.encode(), target, request.get_data(cache=True)):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()


def ttl() -> timedelta:
    return timedelta(hours=current_app.config["IDEMPOTENCY_TTL_HOURS"])


def purge_idempotency_records(older_than: timedelta | None = None) -> int:
    """Delete records older than ``older_than`` (default IDEMPOTENCY_TTL_HOURS): a periodic job.

    Flushes only: the task commits. Returns how many were deleted.
    """
    cutoff = utcnow() - (older_than if older_than is not None else ttl())
    result = db.session.execute(
        sa.delete(IdempotencyRecord)
        .where(IdempotencyRecord.created_at < cutoff)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount


# --- internals ---------------------------------------------------------------------------------


def _find(user_id: int, key: str) -> IdempotencyRecord | None:
    return db.session.scalar(
        sa.select(IdempotencyRecord)
        .where(IdempotencyRecord.user_id == user_id, IdempotencyRecord.key == key)
        .execution_options(populate_existing=True)
    )


def _claim(
    user_id: int, key: str, fingerprint: str
) -> tuple[IdempotencyRecord, None] | tuple[None, Response]:
    """Insert the record for this key, or answer from the one already there."""
    existing = _find(user_id, key)
    if existing is not None:
        if existing.created_at >= utcnow() - ttl():
            return None, _answer(existing, fingerprint)
        # Expired but not yet purged: the key is free again, as it will be after the purge.
        db.session.delete(existing)
        db.session.flush()
    record = IdempotencyRecord(
        user_id=user_id,
        key=key,
        method=request.method,
        path=request.path[:500],
        request_hash=fingerprint,
    )
    try:
        # A savepoint: on PostgreSQL a failed insert aborts the transaction until rolled back.
        with db.session.begin_nested():
            db.session.add(record)
    except IntegrityError:
        # The same key committed meanwhile (PostgreSQL made this insert wait for it): answer it.
        existing = _find(user_id, key)
        if existing is None:
            raise _in_progress() from None
        return None, _answer(existing, fingerprint)
    return record, None


def _answer(record: IdempotencyRecord, fingerprint: str) -> Response:
    if record.request_hash != fingerprint:
        raise Conflict(
            "This Idempotency-Key was already used for a different request.",
            code="idempotency_key_reused",
        )
    if record.status_code is None:
        raise _in_progress()
    response = current_app.response_class(
        record.response_body or "", status=record.status_code, content_type=record.content_type
    )
    response.headers[REPLAYED_HEADER] = "true"
    return response


def _in_progress() -> Conflict:
    return Conflict(
        "A request with this Idempotency-Key is still being processed; retry shortly.",
        code="idempotency_key_in_progress",
        headers={"Retry-After": "1"},
    )


def _remember(record: IdempotencyRecord, response: Response) -> None:
    record.status_code = response.status_code
    record.response_body = response.get_data(as_text=True)
    record.content_type = (response.content_type or "")[:100] or None
    db.session.flush()


def _forget(record: IdempotencyRecord) -> None:
    db.session.delete(record)
    db.session.flush()


def _document(wrapper: Any) -> None:
    """Add the header parameter and the 409 (and 422) responses to flask-smorest's operation doc."""
    apidoc = deepcopy(getattr(wrapper, "_apidoc", {}))
    arguments = apidoc.setdefault("arguments", {})
    arguments.setdefault("parameters", []).append(deepcopy(HEADER_PARAMETER))
    arguments.setdefault("responses", {})[422] = "UNPROCESSABLE_ENTITY"
    conflicts = apidoc.setdefault("response", {}).setdefault("responses", {}).setdefault(409, [])
    if "CONFLICT" not in conflicts:
        conflicts.append("CONFLICT")
    wrapper._apidoc = apidoc
