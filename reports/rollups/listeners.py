"""The roll-ups follow every commit: a transaction's recorded changes are folded in before it
commits, inside it (``before_commit``), so a report never reads a roll-up behind the rows it sums.

The triggers record changes whoever writes (the ORM, Core statements, text SQL); a transaction
that writes nothing the roll-ups count finds nothing to take and costs one indexed ``DELETE``,
and one that never reached the database costs nothing.
Changes written outside a session (a script over a raw connection) are folded in by the sweep
task (:func:`reports.rollups.tasks.sweep_changes`).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy import orm

from reports.rollups import service

_CONNECTED = "reports.rollups.connected"


@sa.event.listens_for(orm.Session, "after_begin")
def _connected(session: orm.Session, _transaction: Any, _connection: Any) -> None:
    session.info[_CONNECTED] = True


@sa.event.listens_for(orm.Session, "after_soft_rollback")
def _forget(session: orm.Session, previous_transaction: orm.SessionTransaction) -> None:
    if previous_transaction.parent is None:
        session.info.pop(_CONNECTED, None)


@sa.event.listens_for(orm.Session, "before_commit")
def _fold_changes(session: orm.Session) -> None:
    if session.in_nested_transaction():
        return  # a savepoint released: the outer transaction folds its changes in when it commits
    connected = session.info.pop(_CONNECTED, False)
    if not connected and not (session.new or session.dirty or session.deleted):
        # The transaction never reached the database and has nothing to flush (a static file, a
        # refusal before any query): it wrote nothing, and a statement here would begin a
        # transaction for nothing.
        return
    if session.get_bind().dialect.name not in ("postgresql", "sqlite"):
        return
    if session is not _app_session():
        return
    session.flush()
    service.recompute(service.affected(service.take_changes()))


def _app_session() -> orm.Session | None:
    """The application's current session (the roll-up service works through it), if one is active."""
    from core.extensions import db

    try:
        return db.session()
    except RuntimeError:  # outside an application context
        return None
