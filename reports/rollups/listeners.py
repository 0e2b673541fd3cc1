"""The roll-ups follow every commit: a transaction's recorded changes are folded in before it
commits, inside it (``before_commit``), so a report never reads a roll-up behind the rows it sums.

The triggers record changes whoever writes (the ORM, Core statements, text SQL); a transaction
that writes nothing the roll-ups count finds nothing to take and costs one indexed ``DELETE``.
Changes written outside a session (a script over a raw connection) are folded in by the sweep
task (:func:`reports.rollups.tasks.sweep_changes`).
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy import orm

from reports.rollups import service


@sa.event.listens_for(orm.Session, "before_commit")
def _fold_changes(session: orm.Session) -> None:
    if session.in_nested_transaction():
        return  # a savepoint released: the outer transaction folds its changes in when it commits
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
