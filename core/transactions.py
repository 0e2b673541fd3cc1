"""Where work is committed (DESIGN.md, transactions): services only flush; a request commits once,
at its end (``app.py``), and so does a task (``core/tasks.py``) or a CLI command.

Two exceptions, each said here once: a long-running task commits after each batch of its work
(:func:`commit_batch`), and a request whose refusal must leave a trace commits its changes even
though it answers with an error (an :class:`~core.errors.ApiError` with ``keeps_changes``).

And one saving: a view marked :func:`reads_only` runs on PostgreSQL without a transaction at all.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import sqlalchemy as sa
from flask import Flask, g, request

from core.extensions import db

F = TypeVar("F", bound=Callable[..., Any])
_READS_ONLY = "_shouwang_reads_only"


def commit_batch() -> None:
    """Commit what a long-running task has done so far: the end of one batch of its work.

    A task that works through a backlog in batches (point expiry, no-shows, the series top-up,
    delivering the outbox) commits after each batch instead of only at its end, so that

    - a transaction stays bounded: the locks one batch takes and the rows it writes, not a whole
      sweep's (a district's expiries are not one transaction held for minutes, nor one rollback
      when the last row fails);
    - progress survives a crash: a task redelivered after its worker died finds the batches done
      and goes on with the rest, instead of redoing them all or never getting past them.

    That is safe only because each batch is idempotent on its own and leaves nothing half done:
    it reads again what is still to do and writes each change at most once (unique keys,
    conditional UPDATEs, claims with a lease), so a batch run twice, or by two workers at once,
    changes nothing more. Tasks enqueued during the batch (``enqueue_after_commit``) are sent now.
    A request never calls this.
    """
    db.session.commit()


def keep_changes_on_error() -> None:
    """Commit this request's changes even though it answers with an error (HTTP layer only).

    For the rare refusal that must leave a trace, e.g. revoking a token family when a stolen
    refresh token is replayed: the answer is 401, and the revocation must stick. Services say so
    by raising an ``ApiError`` with ``keeps_changes``; its handler calls this.
    """
    g.keep_changes_on_error = True


def changes_kept_on_error() -> bool:
    return bool(g.get("keep_changes_on_error"))


def reads_only(func: F) -> F:
    """Mark a view that only reads: on PostgreSQL it runs outside any transaction.

    Under READ COMMITTED, which we use, each statement of a transaction takes a fresh snapshot
    anyway, so a view that only SELECTs sees nothing different without one; it saves BEGIN, COMMIT
    and the commit hooks' statements (the roll-ups' fold), three of a read's five round trips on the
    phone's hottest reads (bench/README.md, issue 19). Only for views whose every statement is a
    plain read: no writes, no ``FOR UPDATE``, no transaction-scoped lock, which would each take
    effect or end at once. SQLite is unchanged (its readers never wait in WAL mode anyway).
    """
    setattr(func, _READS_ONLY, True)
    return func


def _view_reads_only(app: Flask) -> bool:
    view = app.view_functions.get(request.endpoint or "")
    view_class = getattr(view, "view_class", None)
    if view_class is not None:  # a MethodView: the method that will answer
        view = getattr(view_class, request.method.lower(), None)
    return bool(getattr(view, _READS_ONLY, False))


def begin_request(app: Flask) -> None:
    """Before the view (and its token check): a ``reads_only`` view's connection in autocommit.

    Not when the session is in a transaction already, or bound to a connection rather than the
    engine (a test's, in a transaction rolled back after it): the view then reads inside it.
    """
    if request.method not in ("GET", "HEAD") or not _view_reads_only(app):
        return
    session = db.session()
    bind = session.get_bind()
    if isinstance(bind, sa.Engine) and bind.dialect.name == "postgresql" and not session.in_transaction():
        db.session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
        g.reads_only = True


def request_reads_only() -> bool:
    return bool(g.get("reads_only"))


def session_in_use() -> bool:
    """Whether this request's session has begun or holds changes: if not, there is nothing to end."""
    if not db.session.registry.has():
        return False
    session = db.session()
    return session.in_transaction() or bool(session.new or session.dirty or session.deleted)
