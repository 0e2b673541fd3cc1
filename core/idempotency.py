"""Idempotency keys for writes a phone may retry (DESIGN.md, API conventions).

A replay of the same key with the same request returns the first response; the same key with a
different request is 409. The stored response is written in the same transaction as the change it
describes, so a retry after a lost response can never apply the change twice.

Put :func:`idempotent` directly under ``@auth_required(...)`` (keys are per caller) and above
``@blp.arguments``/``@blp.response`` (it stores the finished response); an upload route's
``@upload_body_limit`` goes above both (``core/uploads.py``)::

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
:func:`idempotent` prevents when a request keeps its changes on an error (an ``ApiError`` with
``keeps_changes``, core/transactions.py): then the error is stored and replayed like any other
answer. ``idempotency_key_in_progress`` is
the safe answer should such a record ever be seen.

A view that serialises the requests of one caller itself, before it changes anything (check-in and
check-out take the volunteer's schedule lock in their first statement), is decorated
``@idempotent(view_serialises=True)``: its record is written once, with the answer, after the view
(one statement fewer on the phone's hottest write, issue 19). A second request with the key then
waits in the view for the first to commit, runs, and finds the key taken when it records its answer:
its own changes are rolled back and the first answer is replayed, as above. A view that refuses
(an error that keeps nothing) probes the key the same way, so a retry of a request that succeeded
still gets the first answer, whatever the view would say now.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import re
from collections.abc import Callable
from copy import deepcopy
from datetime import datetime, timedelta
from functools import partial, wraps
from typing import Any, TypeVar, overload

import sqlalchemy as sa
from flask import Response, current_app, request
from sqlalchemy.orm import Mapped, mapped_column

from core import i18n
from core.auth import current_caller
from core.db import UTCDateTime, insert_on_conflict, rowcount, utcnow
from core.errors import ApiError, Conflict, ValidationFailed, handle_api_error
from core.extensions import Model, db
from core.transactions import changes_kept_on_error

F = TypeVar("F", bound=Callable[..., Any])

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
MAX_KEY_LENGTH = 200
_KEY_PATTERN = re.compile(r"[\x20-\x7e]{1,200}")
_INVALID_KEY = i18n.N_("Use 1 to 200 printable ASCII characters.")

i18n.register_titles(
    i18n.title("idempotency_key_reused", "Idempotency key already used for another request"),
    i18n.title("idempotency_key_in_progress", "A request with this idempotency key is in progress"),
)
i18n.register_messages(
    _INVALID_KEY,
    i18n.N_("This Idempotency-Key was already used for a different request."),
    i18n.N_("A request with this Idempotency-Key is still being processed; retry shortly."),
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


class IdempotencyRecord(Model):
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


_INSERT = insert_on_conflict(
    IdempotencyRecord.__table__,
    ["user_id", "key", "method", "path", "request_hash", "created_at"],
    ["user_id", "key"],
)
_INSERT_ANSWERED = insert_on_conflict(
    IdempotencyRecord.__table__,
    ["user_id", "key", "method", "path", "request_hash", "status_code", "response_body", "content_type", "created_at"],
    ["user_id", "key"],
)
_REMEMBER = (
    sa.update(IdempotencyRecord)
    .where(IdempotencyRecord.id == sa.bindparam("record_id"))
    .values(
        status_code=sa.bindparam("status_code"),
        response_body=sa.bindparam("response_body"),
        content_type=sa.bindparam("content_type"),
    )
    .execution_options(synchronize_session=False)
)


# --- the decorator -----------------------------------------------------------------------------


@overload
def idempotent(func: F) -> F: ...


@overload
def idempotent(*, view_serialises: bool) -> Callable[[F], F]: ...


def idempotent(func: F | None = None, *, view_serialises: bool = False) -> F | Callable[[F], F]:
    """Honour an optional ``Idempotency-Key`` header on this write (see the module docstring).

    ``view_serialises``: the view serialises the requests of one caller before changing anything,
    so the record can be written after it, with its answer, in one statement.
    """
    if func is None:
        return partial(_decorate, view_serialises=view_serialises)
    return _decorate(func, view_serialises=False)


def _decorate(func: F, view_serialises: bool) -> F:
    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        key = request.headers.get(HEADER)
        if key is None:
            return func(*args, **kwargs)
        if not _KEY_PATTERN.fullmatch(key):
            raise ValidationFailed(errors={HEADER: [_INVALID_KEY]})
        if view_serialises:
            return _record_after(func, args, kwargs, current_caller().user_id, key, request_fingerprint())
        claimed = _claim(current_caller().user_id, key, request_fingerprint())
        if isinstance(claimed, Response):
            return claimed  # the first answer, replayed
        record_id = claimed
        try:
            response = current_app.make_response(func(*args, **kwargs))
        except ApiError as error:
            if not (error.keeps_changes or changes_kept_on_error()):
                raise  # the whole request rolls back, the record with it: a retry runs again
            response = handle_api_error(error)
        except Exception:
            if changes_kept_on_error():
                _forget(record_id)
            raise
        # Whatever commits with the record is what a retry must see again; anything else rolls back.
        if response.status_code < 400 or changes_kept_on_error():
            _remember(record_id, response)
        return response

    _document(wrapper)
    wrapper.__doc__ = inspect.cleandoc(func.__doc__ or "") + (
        f"\n\nAccepts an `{HEADER}` header: a retry with the same key returns the first response."
    )
    return wrapper  # type: ignore[return-value]  # wraps(func): the signature F promises


def _record_after(
    func: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any], user_id: int, key: str, fingerprint: str
) -> Response:
    """Run the view, then record its answer under the key: or answer from the record already there."""
    try:
        response = current_app.make_response(func(*args, **kwargs))
    except ApiError as error:
        if error.keeps_changes or changes_kept_on_error():
            response = handle_api_error(error)
        else:
            # A retry of a request that succeeded gets its answer, not what the view says now. The
            # probe waits for a first request still running; this one's record rolls back with it.
            if _insert(user_id, key, fingerprint) is not None:
                raise
            existing = _find(user_id, key)
            if existing is None or existing.created_at < utcnow() - ttl():
                raise  # purged or expired: the key is free, and this is the answer to this request
            return _answer_instead(existing, fingerprint)
    if response.status_code >= 400 and not changes_kept_on_error():
        return response  # rolled back, unrecorded: a retry runs again
    if _insert(user_id, key, fingerprint, response) is not None:
        return response
    existing = _find(user_id, key)
    if existing is not None and existing.created_at < utcnow() - ttl():
        # Expired but not yet purged: the key is free again, as it will be after the purge.
        db.session.delete(existing)
        db.session.flush()
        if _insert(user_id, key, fingerprint, response) is not None:
            return response
        existing = _find(user_id, key)  # another request took the freed key first
    if existing is None:
        raise _in_progress()  # purged between the two statements: the retry will run it
    return _answer_instead(existing, fingerprint)


def _answer_instead(existing: IdempotencyRecord, fingerprint: str) -> Response:
    """The first answer under this key, this request's own changes undone."""
    answer = _answer(existing, fingerprint)  # a different request is 409, rolled back as an error
    db.session.rollback()
    return answer


def request_fingerprint() -> str:
    """SHA-256 of method, path with query string and body, each length-prefixed.

    The body is its bytes, except for multipart forms: a phone that rebuilds an upload from its
    offline queue picks a new random boundary, so there the fields and each file's name, type and
    content hash are compared instead.
    """
    digest = hashlib.sha256()
    target = request.path.encode() + (b"?" + request.query_string if request.query_string else b"")
    body = _form_fingerprint() if request.mimetype == "multipart/form-data" else request.get_data(cache=True)
    for part in (request.method.encode(), target, body):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()


def _form_fingerprint() -> bytes:
    parts: list[list[str | None]] = [["field", name, value] for name, value in request.form.items(multi=True)]
    for name, upload in request.files.items(multi=True):
        content = hashlib.sha256()
        for chunk in iter(partial(upload.stream.read, 65536), b""):
            content.update(chunk)
        upload.stream.seek(0)  # the view reads it next
        parts.append(["file", name, upload.filename or "", upload.mimetype or "", content.hexdigest()])
    # Each part as JSON text, so any mix of values sorts (werkzeug may hand over None).
    return json.dumps(sorted(json.dumps(part, ensure_ascii=False) for part in parts)).encode()


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
    return rowcount(result)


# --- internals ---------------------------------------------------------------------------------


def _find(user_id: int, key: str) -> IdempotencyRecord | None:
    return db.session.scalar(
        sa.select(IdempotencyRecord)
        .where(IdempotencyRecord.user_id == user_id, IdempotencyRecord.key == key)
        .execution_options(populate_existing=True)
    )


def _insert(user_id: int, key: str, fingerprint: str, response: Response | None = None) -> int | None:
    """Insert the record in one statement, with ``response`` if given; None if the key is taken
    (no savepoint needed).

    On PostgreSQL ``ON CONFLICT DO NOTHING`` waits for a concurrent insert of the same key: if that
    commits, this does nothing; if it rolls back, this inserts. Run on the session's connection
    (after flushing what the session holds, as its own execute would): a text statement gains
    nothing from the ORM's execution path, which cost the phone's check-in 4% (bench/README.md).
    """
    params = {
        "user_id": user_id,
        "key": key,
        "method": request.method,
        "path": request.path[:500],
        "request_hash": fingerprint,
        "created_at": utcnow(),
    }
    db.session.flush()
    if response is None:
        return db.session.connection().scalar(_INSERT, params)
    return db.session.connection().scalar(_INSERT_ANSWERED, params | _answer_columns(response))


def _claim(user_id: int, key: str, fingerprint: str) -> int | Response:
    """Insert the record for this key (its id), or answer from the one already there."""
    record_id = _insert(user_id, key, fingerprint)
    if record_id is not None:
        return record_id
    existing = _find(user_id, key)
    if existing is None:
        raise _in_progress()  # purged between the two statements: the retry will run it
    if existing.created_at >= utcnow() - ttl():
        return _answer(existing, fingerprint)
    # Expired but not yet purged: the key is free again, as it will be after the purge.
    db.session.delete(existing)
    db.session.flush()
    record_id = _insert(user_id, key, fingerprint)
    if record_id is None:
        raise _in_progress()  # another request took the freed key first
    return record_id


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


def _answer_columns(response: Response) -> dict[str, Any]:
    return {
        "status_code": response.status_code,
        "response_body": response.get_data(as_text=True),
        "content_type": (response.content_type or "")[:100] or None,
    }


def _remember(record_id: int, response: Response) -> None:
    db.session.execute(_REMEMBER, {"record_id": record_id} | _answer_columns(response))


def _forget(record_id: int) -> None:
    db.session.execute(
        sa.delete(IdempotencyRecord)
        .where(IdempotencyRecord.id == record_id)
        .execution_options(synchronize_session=False)
    )


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
