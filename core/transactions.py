"""Where work is committed (DESIGN.md, transactions): services only flush; a request commits once,
at its end (``app.py``), and so does a task (``core/tasks.py``) or a CLI command.

Two exceptions, each said here once: a long-running task commits after each batch of its work
(:func:`commit_batch`), and a request whose refusal must leave a trace commits its changes even
though it answers with an error (an :class:`~core.errors.ApiError` with ``keeps_changes``).
"""

from __future__ import annotations

from flask import g

from core.extensions import db


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
